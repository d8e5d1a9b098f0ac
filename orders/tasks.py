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
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, router, transaction
from django.tasks import Task
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult


def enqueue(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` with `args`; it runs at `run_after` at the earliest (at once when
    that is not in the future)."""
    later = run_after is not None and run_after > timezone.now()
    (task.using(run_after=run_after) if later else task).enqueue(*args)


def enqueue_on_commit(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(enqueue, task, *args, run_after=run_after))


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
