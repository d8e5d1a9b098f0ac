"""Crash recovery: what a killed worker left behind is found and resumed.

django-tasks-db marks a task RUNNING when a worker claims it and never looks
at it again if that worker dies. Two sweeps make that safe:

- `tasks_recover`: a task RUNNING for longer than TASK_LEASE_SECONDS is
  marked FAILED (its worker is presumed dead) and enqueued again;
- `orders_recover`: an open order whose run stopped (PLACED for longer than the
  lease, or PENDING past `next_attempt_at`, which is the run's lease or the
  scheduled retry) gets a new fulfilment task.

Re-running is always safe: every fulfilment step locks the order row and
re-checks its state (see fulfilment). `maintenance_sweep` runs both, the
voucher expiry and the lost-webhook and lost-e-mail sweeps; `run_worker`
calls it periodically.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.tasks import task_backends
from django.utils import timezone
from django.utils.module_loading import import_string

from orders.enums import OrderStatus, SubStatus
from orders.models import Order
from orders.services.actors import Actor
from orders.services.expiry import vouchers_expire
from orders.services.fulfilment import enqueue_fulfilment
from orders.services.notifications import delivery_emails_resume
from orders.services.webhooks import webhook_deliveries_resume

logger = logging.getLogger(__name__)

SWEEPER = Actor.system("sweeper")
LEASE_EXPIRED = "orders.services.recovery.TaskLeaseExpired"


class TaskLeaseExpired(Exception):
    """Recorded on a task whose worker stopped answering."""


def _uses_database_backend() -> bool:
    from django_tasks_db.backend import DatabaseBackend

    return isinstance(task_backends["default"], DatabaseBackend)


def _reenqueue(task_path: str, args_kwargs: dict[str, Any]) -> None:
    task = import_string(task_path)
    task.enqueue(*args_kwargs.get("args", []), **args_kwargs.get("kwargs", {}))


def tasks_recover(*, lease_seconds: int | None = None, limit: int = 200) -> int:
    """Fail tasks RUNNING longer than the lease and enqueue our ones again."""
    if not _uses_database_backend():
        return 0  # other engines (RQ, Celery) have their own lost-job handling
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    lease = settings.TASK_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            DBTaskResult.objects.select_for_update(skip_locked=True)
            .filter(status=TaskResultStatus.RUNNING, started_at__lt=now - timedelta(seconds=lease))
            .order_by("started_at")[:limit]
        )
        for result in stale:
            result.status = TaskResultStatus.FAILED
            result.finished_at = now
            result.exception_class_path = LEASE_EXPIRED
            result.traceback = (
                f"Worker {result.worker_ids[-1:]} held this task for more than {lease}s "
                "and is presumed dead; the task was enqueued again."
            )
            result.save(
                update_fields=["status", "finished_at", "exception_class_path", "traceback"]
            )
            if result.task_path.startswith("orders.tasks."):
                transaction.on_commit(partial(_reenqueue, result.task_path, result.args_kwargs))
    if stale:
        logger.warning("Recovered %d task(s) from dead workers", len(stale))
    return len(stale)


def _orders_with_live_task(order_ids: list[int]) -> set[int]:
    """Orders that already have a READY or RUNNING fulfilment task (database backend)."""
    if not order_ids or not _uses_database_backend():
        return set()  # other engines: the time-based test above is all we have
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    live = DBTaskResult.objects.filter(
        task_path="orders.tasks.order_fulfil",
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
        args_kwargs__args__0__in=order_ids,
    )
    return {args["args"][0] for args in live.values_list("args_kwargs", flat=True)}


def orders_recover(*, lease_seconds: int | None = None, limit: int = 500) -> int:
    """Enqueue fulfilment again for open orders whose run died or whose task was lost.

    An order that still has a queued or running task is left alone, so a long
    queue does not fill with duplicates (they would be harmless, only wasted).
    """
    lease = settings.TASK_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    stale_placed = Q(status=OrderStatus.PLACED, updated_at__lte=now - timedelta(seconds=lease))
    grace = timedelta(seconds=settings.WORKER_SWEEP_SECONDS)
    stale_pending = Q(status=OrderStatus.PENDING) & (
        Q(next_attempt_at__lte=now - grace)
        | Q(next_attempt_at__isnull=True, updated_at__lte=now - timedelta(seconds=lease))
    )
    candidates = list(
        Order.objects.filter(stale_placed | stale_pending)
        .exclude(sub_status=SubStatus.BULK_LIMIT_EXCEEDED)  # waits for an admin
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    queued = _orders_with_live_task(candidates)
    ids = [pk for pk in candidates if pk not in queued]
    if ids:
        # Not again for another lease, whatever the queue's backlog.
        Order.objects.filter(pk__in=ids, status=OrderStatus.PLACED).update(updated_at=now)
        for order_id in ids:
            enqueue_fulfilment(order_id)
        logger.info("Re-enqueued fulfilment of %d stalled order(s)", len(ids))
    return len(ids)


def maintenance_sweep() -> dict[str, int]:
    """One pass of every periodic job; safe to run on many workers at once."""
    return {
        "tasks_recovered": tasks_recover(),
        "orders_recovered": orders_recover(),
        "vouchers_expired": vouchers_expire(actor=SWEEPER),
        "webhooks_resumed": webhook_deliveries_resume(),
        "emails_resumed": delivery_emails_resume(),
    }
