"""Queueing: work is enqueued after commit through one helper (or inside the
transaction, when the queue is a table of the same database), and the services
import that helper (and each other) without an import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from django.tasks import task_backends
from django_tasks_db.models import DBTaskResult

from orders.services.fulfilment import order_fulfil_task
from orders.tasks import enqueue_on_commit, enqueue_with_transaction

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


@pytest.mark.django_db(transaction=True)
def test_a_task_in_the_database_queue_commits_with_the_transaction_or_not_at_all():
    with transaction.atomic():
        enqueue_with_transaction(order_fulfil_task, 42)
        # Written inside the transaction: its own commit will carry it.
        assert DBTaskResult.objects.get().args_kwargs["args"] == [42]
        transaction.set_rollback(True)
    assert not DBTaskResult.objects.exists()

    with transaction.atomic():
        enqueue_with_transaction(order_fulfil_task, 43)
    assert DBTaskResult.objects.get().args_kwargs["args"] == [43]


@pytest.mark.django_db(transaction=True)
def test_a_task_for_another_queue_is_sent_only_once_the_transaction_commits(settings):
    settings.TASKS = {
        **settings.TASKS,
        "elsewhere": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
    }
    task = order_fulfil_task.using(backend="elsewhere")
    sent = task_backends["elsewhere"].results
    with transaction.atomic():
        enqueue_with_transaction(task, 44)
        assert sent == []  # a job in another system could run before the commit
    assert [result.args for result in sent] == [[44]]
    assert not DBTaskResult.objects.exists()


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
