"""Queueing background work: the one way every service enqueues a task.

Each task is defined beside the service it runs (`order_fulfil_task` in
services/fulfilment.py, `webhook_deliver_task` in services/webhooks.py,
`delivery_email_send_task` in services/notifications.py), so the services
import this module at the top and nothing here imports a service: no import
circle. A task takes ids only and calls one service.

Work caused by a write is enqueued on commit (`enqueue_on_commit`): a worker
never sees a row that was rolled back, and a request never waits on the queue
inside its transaction. Sweeps that run outside a transaction use `enqueue`.

`enqueue_with_transaction` makes the task part of the transaction instead when
the queue is a table of the same database (django_tasks_db, the default): the
task row is inserted inside the transaction and commits with the write that
caused it, in the same commit, and a rollback leaves no task. With any other
backend (RQ, Celery) it falls back to `enqueue_on_commit`, since a job queued
in another system could run before the commit. See docs/decisions/0003.

Orders the worker's stock batcher delivers get no task: placing calls
`ready_orders_wake` instead, and the batcher waits in `ready_orders_wait`
(PostgreSQL LISTEN/NOTIFY: the wake-up is sent at commit and never for a
rollback; other databases poll). See docs/decisions/0007.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, router, transaction
from django.tasks import Task
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from orders import logs


def enqueue(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` with `args`; it runs at `run_after` at the earliest (at once when
    that is not in the future). The request id of the log context goes with it."""
    later = run_after is not None and run_after > timezone.now()
    request_id = logs.current("request_id")
    kwargs = {"request_id": request_id} if request_id else {}
    if later:
        assert run_after is not None
        # Up to the next whole second: RQ's scheduler keeps whole seconds only, and a
        # retry moved onto the queue early would find its order not yet due.
        if run_after.microsecond:
            run_after = run_after.replace(microsecond=0) + timedelta(seconds=1)
        task = task.using(run_after=run_after)
    task.enqueue(*args, **kwargs)


def enqueue_on_commit(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` once the current transaction commits (at once outside one).

    A queue out of reach at that moment (Redis down, with RQ) does not fail the
    request whose write has committed: the error is logged and the sweeps enqueue
    the work again (a placed order once unchanged for TASK_LEASE_SECONDS, a webhook
    delivery or an e-mail once overdue)."""
    transaction.on_commit(partial(enqueue, task, *args, run_after=run_after), robust=True)


def _queued_in(task: Task[Any, Any], using: str) -> bool:
    """Whether `task` is queued as a row of database `using` (django_tasks_db)."""
    return (
        isinstance(task.get_backend(), DatabaseBackend)
        and router.db_for_write(DBTaskResult) == using
    )


def enqueue_with_transaction(
    task: Task[Any, Any], *args: int, run_after: datetime | None = None
) -> None:
    """Queue `task` as part of the current transaction: it exists once that commits
    and never if it rolls back. A task table in the same database is written inside
    the transaction (one commit for both); any other queue is written on commit."""
    if _queued_in(task, DEFAULT_DB_ALIAS):
        enqueue(task, *args, run_after=run_after)
    else:
        enqueue_on_commit(task, *args, run_after=run_after)


# The channel of "an order is ready for the stock batcher" (PostgreSQL NOTIFY).
READY_ORDERS_CHANNEL = "starship_orders_ready"


def ready_orders_wake() -> None:
    """Wake the stock batchers once the current transaction commits (NOTIFY is
    delivered at commit, and not at all after a rollback). Other databases have
    no such channel: their batchers poll."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {READY_ORDERS_CHANNEL}")


class ReadyOrdersListener:
    """What a stock batcher waits on: on PostgreSQL its connection LISTENs (again
    after a reconnect) and `wait` returns at the first wake-up, having taken
    every one already sent, or after `timeout`; elsewhere `wait` sleeps `timeout`.
    `stop` cuts a wait short."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self._listening: object = None

    def wait(self, timeout: float) -> bool:
        """Whether a wake-up came (False: the timeout passed, or no channel here)."""
        if connection.vendor != "postgresql":
            self.stop.wait(timeout)
            return False
        connection.ensure_connection()
        pg = connection.connection
        if self._listening is not pg:
            pg.execute(f"LISTEN {READY_ORDERS_CHANNEL}")
            self._listening = pg
        woken = any(True for _ in pg.notifies(timeout=timeout, stop_after=1))
        for _ in pg.notifies(timeout=0):  # the ones sent meanwhile: one batch takes them all
            pass
        return woken
