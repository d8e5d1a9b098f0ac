"""Background tasks in tests: run the ready ones in this process, wait on a condition
with a deadline, and real `run_worker` subprocesses against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.tasks import Task
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from orders import task_engines
from orders.models import Order
from orders.services.fulfilment import orders_deliver_all_ready
from tests.helpers.keys import TEST_AUDIT_KEY, TEST_FINGERPRINT_KEY, TEST_KEY_1

BASE_DIR = Path(settings.BASE_DIR)
TERMINAL = ("DELIVERED", "PARTIALLY_DELIVERED", "FAILED", "CANCELLED")


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float = 30,
    tick: Callable[[], None] | None = None,
    what: str = "condition",
) -> None:
    """Poll `condition` (running `tick` between polls) until true or the deadline."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


ON_RQ = settings.TASKS_BACKEND == settings.RQ_BACKEND


def run_ready_tasks() -> None:
    """Deliver the ready orders from stock and run every ready task in this
    process, as one `run_worker --batch` would (on either task engine)."""
    if settings.FULFILMENT_STOCK_BATCHER:
        orders_deliver_all_ready()
    if ON_RQ:
        task_engines.RQEngine().work_burst(queue_names=["default"], worker_id=None)
        return
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="in-process",
        excluded_queue_names=[],
    ).run()


# --- What the task engine holds, read the same on both engines ---


def _rq_queue():
    import django_rq
    from django_tasks_rq.backend import Job

    return django_rq.get_queue("default", job_class=Job)


def waiting_task_args(task: Task[Any, Any]) -> list[list[Any]]:
    """The arguments of every task of `task` waiting to run (ready or delayed)."""
    if ON_RQ:
        from rq.job import Job as RQJob

        queue = _rq_queue()
        ids = queue.get_job_ids() + queue.scheduled_job_registry.get_job_ids()
        jobs = RQJob.fetch_many(ids, connection=queue.connection)
        return [list(j.args) for j in jobs if j is not None and j.func_name == task.module_path]
    rows = DBTaskResult.objects.filter(task_path=task.module_path, status="READY")
    return [row["args"] for row in rows.values_list("args_kwargs", flat=True)]


def running_tasks() -> int:
    """Tasks a worker has started and not finished (a killed worker's stay so)."""
    if ON_RQ:
        return _rq_queue().started_job_registry.get_job_count(cleanup=False)
    return DBTaskResult.objects.filter(status="RUNNING").count()


def tasks_presumed_dead() -> int:
    """Tasks the recovery sweep failed because their worker held them past the lease."""
    if ON_RQ:
        from rq.job import Job as RQJob

        queue = _rq_queue()
        jobs = RQJob.fetch_many(
            queue.failed_job_registry.get_job_ids(), connection=queue.connection
        )
        results = [j.latest_result() for j in jobs if j is not None]
        return sum(1 for r in results if r is not None and "presumed dead" in (r.exc_string or ""))
    return DBTaskResult.objects.filter(exception_class_path=task_engines.LEASE_EXPIRED).count()


def lose_waiting_tasks() -> None:
    """Every queued task vanishes, as if the queue lost them."""
    if ON_RQ:
        queue = _rq_queue()
        queue.empty()
        queue.connection.delete(queue.scheduled_job_registry.key)
        return
    DBTaskResult.objects.all().delete()


def all_terminal(order_ids: list[int]) -> bool:
    return Order.objects.filter(pk__in=order_ids, status__in=TERMINAL).count() == len(order_ids)


# --- Workers in a subprocess (PostgreSQL: they must reach the test database) ---


def worker_env(**overrides: str) -> dict[str, str]:
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": url,
            "VOUCHER_KEYS": f"k1:{TEST_KEY_1}",
            "VOUCHER_FINGERPRINT_KEY": TEST_FINGERPRINT_KEY,
            "AUDIT_KEY": TEST_AUDIT_KEY,
            "AUDIT_CHECKPOINT_PATH": str(settings.AUDIT_CHECKPOINT_PATH),
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "TASK_LEASE_SECONDS": "2",
            "WORKER_SWEEP_SECONDS": "1",
            "FULFILMENT_RETRY_BASE_SECONDS": "1",
            "VENDOR_SIM_LATENCY_MS": "0",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(overrides)
    return env


class WorkerPool:
    """Worker subprocesses started by a test; all killed at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, worker_id: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        n = len(self.procs) + 1
        log = open(self.log_dir / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_worker",
                "--interval=0.1",
                f"--worker-id={worker_id or f'test-worker-{n}'}",
            ],
            cwd=BASE_DIR,
            env=worker_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))
