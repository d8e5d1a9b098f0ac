"""The audit log of the dashboard: events newest first, filtered by who, what
and which order; and the seal lag: the events not sealed into their chains yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min
from django.utils import timezone

from orders.models import AuditEvent
from orders.selectors.paging import keyset_slice


@dataclass(frozen=True)
class AuditFilters:
    user_id: int | None = None
    action: str = ""
    order_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    next_cursor: str | None = None
    prev_cursor: str | None = None


def audit_event_list(
    *, filters: AuditFilters, cursor: str | None = None, limit: int = 50
) -> AuditPage:
    """One page of audit events, newest first, by keyset on (created_at, id)."""
    qs = AuditEvent.objects.select_related("actor_user", "order", "voucher")
    if filters.user_id is not None:
        qs = qs.filter(actor_user_id=filters.user_id)
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.order_id is not None:
        qs = qs.filter(order_id=filters.order_id)
    if filters.created_after is not None:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        qs = qs.filter(created_at__lt=filters.created_before)
    rows, next_cursor, prev_cursor = keyset_slice(
        qs, field="created_at", cursor=cursor, limit=limit
    )
    return AuditPage(items=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def audit_actions() -> list[str]:
    """The distinct audit actions, for the audit log's filter."""
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


@dataclass(frozen=True)
class SealLag:
    """The unsealed backlog: how many events, and when the oldest was recorded."""

    unsealed: int
    oldest_at: datetime | None

    def age_seconds(self, *, now: datetime | None = None) -> float:
        """Seconds since the oldest unsealed event was recorded; 0 when all are sealed."""
        if self.oldest_at is None:
            return 0.0
        return max(0.0, ((now or timezone.now()) - self.oldest_at).total_seconds())


def audit_seal_lag() -> SealLag:
    """One query on the partial index of unsealed events:
    SELECT count(*), min(created_at) FROM orders_auditevent WHERE sealed_at IS NULL."""
    row = AuditEvent.objects.filter(sealed_at__isnull=True).aggregate(
        unsealed=Count("id"), oldest_at=Min("created_at")
    )
    return SealLag(unsealed=row["unsealed"], oldest_at=row["oldest_at"])
