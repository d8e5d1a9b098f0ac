"""The audit log of the dashboard: events newest first, filtered by who, what
and which order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
