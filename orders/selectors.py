"""Read queries shared by the API and the dashboard.

Selectors own `select_related`/`only()` so no caller can cause N+1 queries,
and paginate by keyset on (placed_at, id): the cost of a page does not grow
with how deep it is, and nothing counts the whole table.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orders.enums import InventoryStatus, OrderStatus, SubStatus
from orders.errors import ValidationFailed
from orders.models import Order, Voucher

# --- Inventory ---------------------------------------------------------------


def allocatable_vouchers(*, product_id: int, denomination: Decimal) -> QuerySet[Voucher]:
    """AVAILABLE, unexpired units of one product and denomination, earliest expiry first."""
    return (
        Voucher.objects.filter(
            product_id=product_id, denomination=denomination, status=InventoryStatus.AVAILABLE
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("expires_at", "id")
    )


def available_stock(*, product_id: int, denomination: Decimal) -> int:
    """How many units inventory can deliver now."""
    return allocatable_vouchers(product_id=product_id, denomination=denomination).count()


# --- Orders ------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    """Everything the order lists can filter on; empty means no filter."""

    client_id: int | None = None
    statuses: Sequence[OrderStatus] = ()
    sub_statuses: Sequence[SubStatus] = ()
    product_id: int | None = None
    reference_code: str = ""
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    search: str = ""


@dataclass(frozen=True)
class Cursor:
    placed_at: datetime
    id: int
    direction: Literal["next", "prev"] = "next"

    def encode(self) -> str:
        raw = json.dumps([self.placed_at.isoformat(), self.id, self.direction])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            placed, pk, direction = json.loads(raw)
            when = parse_datetime(placed)
            if when is None or not isinstance(pk, int) or direction not in ("next", "prev"):
                raise ValueError
        except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
            raise ValidationFailed(
                "cursor is not valid; use the one a page returned.", field="cursor"
            ) from None
        return cls(placed_at=when, id=pk, direction=direction)


@dataclass(frozen=True)
class Page:
    items: list[Order]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _search_q(term: str) -> Q:
    term = term.strip()
    query = Q(reference_code=term) | Q(customer_email__iexact=term) | Q(customer_phone=term)
    digits = term.lstrip("#")
    if digits.isdigit() and len(digits) < 19:
        query |= Q(pk=int(digits)) | Q(transaction_id=int(digits))
    return query


def order_queryset(*, filters: OrderFilters) -> QuerySet[Order]:
    """Orders matching `filters`, with product and client joined."""
    qs = Order.objects.select_related("product", "client")
    if filters.client_id is not None:
        qs = qs.filter(client_id=filters.client_id)
    if filters.statuses:
        qs = qs.filter(status__in=[str(s) for s in filters.statuses])
    if filters.sub_statuses:
        qs = qs.filter(sub_status__in=[str(s) for s in filters.sub_statuses])
    if filters.product_id is not None:
        qs = qs.filter(product_id=filters.product_id)
    if filters.reference_code:
        qs = qs.filter(reference_code=filters.reference_code)
    if filters.placed_after is not None:
        qs = qs.filter(placed_at__gte=filters.placed_after)
    if filters.placed_before is not None:
        qs = qs.filter(placed_at__lt=filters.placed_before)
    if filters.search:
        qs = qs.filter(_search_q(filters.search))
    return qs


def order_list(
    *,
    filters: OrderFilters,
    cursor: str | None = None,
    limit: int = 25,
    newest_first: bool = True,
) -> Page:
    """One page of orders by keyset on (placed_at, id), with next/prev cursors."""
    qs = order_queryset(filters=filters)
    position = Cursor.decode(cursor) if cursor else None
    # Walking "prev" reverses the sort, then the page is flipped back.
    forward = position is None or position.direction == "next"
    descending = newest_first == forward
    if position is not None:
        after = Q(placed_at__lt=position.placed_at) | Q(
            placed_at=position.placed_at, id__lt=position.id
        )
        before = Q(placed_at__gt=position.placed_at) | Q(
            placed_at=position.placed_at, id__gt=position.id
        )
        qs = qs.filter(after if descending else before)
    ordering = ["-placed_at", "-id"] if descending else ["placed_at", "id"]
    rows = list(qs.order_by(*ordering)[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return Page(items=[])
    first, last = rows[0], rows[-1]
    more_after = has_more if forward else position is not None
    more_before = position is not None if forward else has_more
    return Page(
        items=rows,
        next_cursor=Cursor(last.placed_at, last.pk, "next").encode() if more_after else None,
        prev_cursor=Cursor(first.placed_at, first.pk, "prev").encode() if more_before else None,
    )
