"""Outgoing messages a task sends with retries: webhook deliveries and delivery e-mails.

Both are rows with a pending status and `next_attempt_at`. The send task
claims its row in a short transaction (`outbox_claim`), sends with no
transaction open, then records the attempt and, on a transient failure,
schedules the next one (backoff.py). While a send is in flight the claim holds
the row by moving `next_attempt_at` past the send's longest possible duration;
a worker that dies mid-send leaves the row overdue, and `outbox_overdue` finds
it for the sweep to enqueue again.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.models import DeliveryEmail, WebhookDelivery


def outbox_claim[Message: (WebhookDelivery, DeliveryEmail)](
    pending: QuerySet[Message], *, pk: int, hold_seconds: float
) -> Message | None:
    """Lock row `pk` of `pending` if it is due and hold it for `hold_seconds` while it is sent.

    None when it is no longer pending, not due yet, or another worker has it.
    """
    with transaction.atomic():
        message = pending.select_for_update(skip_locked=True, no_key=True).filter(pk=pk).first()
        now = timezone.now()
        if message is None or (message.next_attempt_at and message.next_attempt_at > now):
            return None
        message.next_attempt_at = now + timedelta(seconds=hold_seconds)
        message.save(update_fields=["next_attempt_at"])
        return message


def outbox_overdue[Message: (WebhookDelivery, DeliveryEmail)](
    pending: QuerySet[Message], *, overdue_seconds: int | None, limit: int
) -> list[int]:
    """Ids of `pending` rows due for longer than the task lease: their task was lost."""
    grace = settings.TASK_LEASE_SECONDS if overdue_seconds is None else overdue_seconds
    cutoff = timezone.now() - timedelta(seconds=grace)
    return list(
        pending.filter(next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
