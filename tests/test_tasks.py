"""Queueing: work is enqueued after commit through one helper, and the services
import that helper (and each other) without an import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from orders.services.fulfilment import order_fulfil_task
from orders.tasks import enqueue_on_commit

ROOT = Path(settings.BASE_DIR)
# The modules the circle ran through, and everything else that queues work.
MODULES = [ROOT / "orders" / "tasks.py", *sorted((ROOT / "orders" / "services").glob("*.py"))]


@pytest.mark.django_db(transaction=True)
def test_work_is_queued_only_once_the_transaction_commits():
    with transaction.atomic():
        enqueue_on_commit(order_fulfil_task, 41)
        assert not DBTaskResult.objects.exists()  # a rollback here would leave no task
    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.args_kwargs["args"]) == (order_fulfil_task.module_path, [41])


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (not for type checks)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_services_and_the_queueing_helpers_import_without_a_circle():
    graph = {_module(path): _imports(path) for path in MODULES}
    graph = {name: {dep for dep in deps if dep in graph} for name, deps in graph.items()}
    assert not _imports(ROOT / "orders" / "tasks.py") & set(graph), "tasks.py imports a service"

    no_circle: set[str] = set()

    def circle_from(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in no_circle:
            return None
        for dep in sorted(graph[name]):
            found = circle_from(dep, [*path, name])
            if found:
                return found
        no_circle.add(name)
        return None

    circles = [c for c in (circle_from(name, []) for name in sorted(graph)) if c]
    assert circles == []
