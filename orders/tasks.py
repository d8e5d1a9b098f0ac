"""Queueing background work: the one way every service enqueues a task.

Each task is defined beside the service it runs (`order_fulfil_task` in
services/fulfilment.py, `webhook_deliver_task` in services/webhooks.py,
`delivery_email_send_task` in services/notifications.py), so the services
import this module at the top and nothing here imports a service: no import
circle. A task takes ids only and calls one service.

Work caused by a write is enqueued on commit (`enqueue_on_commit`): a worker
never sees a row that was rolled back, and a request never waits on the queue
inside its transaction. Sweeps that run outside a transaction use `enqueue`.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.tasks import Task
from django.utils import timezone


def enqueue(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` with `args`; it runs at `run_after` at the earliest (at once when
    that is not in the future)."""
    later = run_after is not None and run_after > timezone.now()
    (task.using(run_after=run_after) if later else task).enqueue(*args)


def enqueue_on_commit(task: Task[Any, Any], *args: int, run_after: datetime | None = None) -> None:
    """Queue `task` once the current transaction commits (at once outside one)."""
    transaction.on_commit(partial(enqueue, task, *args, run_after=run_after))
