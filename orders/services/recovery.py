"""Crash recovery: what a killed worker left behind is found and resumed.

Neither task engine looks again at a task whose worker died mid-run
(django-tasks-db leaves it RUNNING; RQ leaves it in its started registry for
the job timeout and then fails it). Two sweeps make that safe:

- `tasks_recover`: a task running for longer than TASK_LEASE_SECONDS is
  marked FAILED (its worker is presumed dead) and enqueued again, on either
  engine (orders.task_engines);
- `orders_recover`: an open order whose run stopped gets a new fulfilment
  task: PLACED for longer than the lease, or PENDING and no run holds it (see
  the lease in rules) while its last run's lease ran out, its scheduled retry
  (`next_attempt_at`) is overdue, or it has neither and has not changed for a
  lease.

Queued rows name their task by dotted path. Tasks that moved keep working:
`tasks_repath` points queued rows of a retired path at the task's new one
(docs/decisions/0003-task-paths.md).

Re-running is always safe: every fulfilment step locks the order row and
re-checks its state (see fulfilment); a stock batch killed before its commit
left its orders PLACED and untouched, and they count as stale PLACED orders.
`maintenance_sweep` runs both, the voucher expiry, the lost-webhook and
lost-e-mail sweeps and the pruning of old API error records; `run_worker`
calls it periodically.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.tasks import Task, TaskResultStatus, task_backends
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from orders import task_engines
from orders.enums import OrderStatus, SubStatus
from orders.models import Order
from orders.rules import lease_held_q
from orders.services.actors import Actor
from orders.services.api_errors import api_errors_prune
from orders.services.expiry import vouchers_expire
from orders.services.fulfilment import order_fulfil_task
from orders.services.notifications import delivery_email_send_task, delivery_emails_resume
from orders.services.rollups import rollups_refresh
from orders.services.webhooks import webhook_deliver_task, webhook_deliveries_resume
from orders.tasks import enqueue

logger = logging.getLogger(__name__)

SWEEPER = Actor.system("sweeper")
LEASE_EXPIRED = task_engines.LEASE_EXPIRED


# Where each task used to live: rows queued before a task moved still run it.
RETIRED_TASK_PATHS: dict[str, Task[Any, Any]] = {
    "orders.tasks.order_fulfil": order_fulfil_task,
    "orders.tasks.webhook_deliver": webhook_deliver_task,
    "orders.tasks.delivery_email_send": delivery_email_send_task,
}
OUR_TASKS = (order_fulfil_task, webhook_deliver_task, delivery_email_send_task)
# Every task of ours by the paths a queued row may name it by.
TASKS_BY_PATH: dict[str, Task[Any, Any]] = {
    **RETIRED_TASK_PATHS,
    **{task.module_path: task for task in OUR_TASKS},
}


class TaskLeaseExpired(Exception):
    """Recorded on a task whose worker stopped answering."""


def _uses_database_backend() -> bool:
    return isinstance(task_backends["default"], DatabaseBackend)


def _requeue(path: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    ours = TASKS_BY_PATH.get(path)
    if ours is not None:  # a task of another app is its own business
        ours.enqueue(*args, **kwargs)


def _paths_of(task: Task[Any, Any]) -> list[str]:
    return sorted(path for path, known in TASKS_BY_PATH.items() if known is task)


def tasks_repath() -> int:
    """Point READY rows queued under a retired task path at the task's current path."""
    if not _uses_database_backend():
        return 0  # other engines: the order, webhook and e-mail sweeps resume the work
    moved = 0
    for old_path, task in RETIRED_TASK_PATHS.items():
        moved += DBTaskResult.objects.filter(
            task_path=old_path, status=TaskResultStatus.READY
        ).update(task_path=task.module_path)
    if moved:
        logger.info("Pointed %d queued task(s) at their tasks' new paths", moved)
    return moved


def tasks_recover(*, lease_seconds: int | None = None, limit: int = 200) -> int:
    """Fail tasks running longer than the lease (their worker is presumed dead) and
    enqueue our ones again, on either task engine."""
    lease = settings.TASK_LEASE_SECONDS if lease_seconds is None else lease_seconds
    recovered = task_engines.current().recover_dead(
        lease_seconds=lease, limit=limit, requeue=_requeue
    )
    if recovered:
        logger.warning("Recovered %d task(s) from dead workers", recovered)
    return recovered


def _orders_with_live_task(order_ids: list[int], lease_seconds: int) -> set[int]:
    """Orders that already have a fulfilment task waiting, or running within the lease."""
    if not order_ids:
        return set()
    return task_engines.current().queued_first_args(
        _paths_of(order_fulfil_task), order_ids, lease_seconds=lease_seconds
    )


def orders_recover(*, lease_seconds: int | None = None, limit: int = 500) -> int:
    """Enqueue fulfilment again for open orders whose run died or whose task was lost.

    An order that still has a queued or running task is left alone, so a long
    queue does not fill with duplicates (they would be harmless, only wasted).
    """
    lease = settings.TASK_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    unchanged = Q(updated_at__lte=now - timedelta(seconds=lease))
    stale_placed = Q(status=OrderStatus.PLACED) & unchanged
    # A sweep's grace after a lease or a retry is due, so a live worker goes first.
    cutoff = now - timedelta(seconds=settings.WORKER_SWEEP_SECONDS)
    stale_pending = (
        Q(status=OrderStatus.PENDING)
        & ~lease_held_q(at=cutoff)
        & (
            Q(leased_until__isnull=False)  # its last run died holding the lease
            | Q(next_attempt_at__lte=cutoff)  # its scheduled retry is overdue
            | (Q(next_attempt_at__isnull=True) & unchanged)  # it has neither, and waits
        )
    )
    candidates = list(
        Order.objects.filter(stale_placed | stale_pending)
        .exclude(sub_status=SubStatus.BULK_LIMIT_EXCEEDED)  # waits for an admin
        .order_by(Coalesce("leased_until", "next_attempt_at"), "id")
        .values_list("pk", flat=True)[:limit]
    )
    queued = _orders_with_live_task(candidates, lease)
    ids = [pk for pk in candidates if pk not in queued]
    if ids:
        # Not again for another lease, whatever the queue's backlog.
        Order.objects.filter(pk__in=ids, status=OrderStatus.PLACED).update(updated_at=now)
        for order_id in ids:
            enqueue(order_fulfil_task, order_id)
        logger.info("Re-enqueued fulfilment of %d stalled order(s)", len(ids))
    return len(ids)


def maintenance_sweep() -> dict[str, int]:
    """One pass of every periodic job; safe to run on many workers at once."""
    return {
        "tasks_repathed": tasks_repath(),
        "tasks_recovered": tasks_recover(),
        "orders_recovered": orders_recover(),
        "vouchers_expired": vouchers_expire(actor=SWEEPER),
        "webhooks_resumed": webhook_deliveries_resume(),
        "emails_resumed": delivery_emails_resume(),
        "rollup_rows": rollups_refresh(),
        "api_errors_pruned": api_errors_prune(),
    }
