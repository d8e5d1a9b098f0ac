"""Order reads of the support workspace and the API: filters, search, one
order's detail; every list is one query with product and client joined."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS
from django.db.models import FilteredRelation, OuterRef, Prefetch, Q, QuerySet, Subquery

from orders.crypto import Sealed
from orders.enums import ItemStatus, OrderStatus, SubStatus
from orders.errors import NotFound
from orders.models import (
    AuditEvent,
    DeliveryEmail,
    Order,
    OrderItem,
    StatusChange,
    WebhookDelivery,
)
from orders.selectors.paging import Page, keyset_slice
from orders.selectors.prepared import Prepared


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


def _search_q(term: str) -> Q:
    """The orders one search box term names: a reference code, a customer's
    e-mail or phone, or an order or transaction number ("#123" or "123")."""
    term = term.strip()
    query = Q(reference_code=term) | Q(customer_email=term.lower()) | Q(customer_phone=term)
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
    rows, next_cursor, prev_cursor = keyset_slice(
        order_queryset(filters=filters),
        field="placed_at",
        cursor=cursor,
        limit=limit,
        newest_first=newest_first,
    )
    return Page(items=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def order_for_client(*, client_id: int, order_id: int) -> Order | None:
    """One of the client's orders with its items, or None (another client's too)."""
    return (
        Order.objects.filter(client_id=client_id, pk=order_id)
        .select_related("product")
        .prefetch_related("items")
        .first()
    )


# Items (with their vouchers) per query of an order's detail; a larger order is
# read in keyset chunks of this size.
DETAIL_CHUNK = 500

_ORDER_COLUMNS = tuple(field.attname for field in Order._meta.concrete_fields)
_ITEM_COLUMNS = ("position", "status", "recharge_status")
# A LINK order's unit: its gift link (NULLs for every other order).
_LINK_COLUMNS = (
    "gift_link__id",
    "gift_link__status",
    "gift_link__claimed_at",
    "gift_link__expires_at",
    "gift_link__token_seed",
)
_VOUCHER_COLUMNS = (
    "voucher__id",
    "voucher__status",
    "voucher__card_number",
    "voucher__pin_code",
    "voucher__claim_url",
    "voucher__voucher_reference_number",
    "voucher__expires_at",
)


@dataclass(frozen=True, slots=True)
class SealedVoucher:
    """A voucher's secrets as stored (sealed, never plaintext) and its status."""

    id: int
    status: str
    card_number: Sealed | None
    pin_code: Sealed | None
    claim_url: Sealed | None
    voucher_reference_number: Sealed | None
    expires_at: datetime | None

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A unit's gift link as its order's detail shows it. `token_seed` rebuilds the
    claim URL with the server's key (orders.crypto.gift_link_token); never shown."""

    id: int
    status: str
    claimed_at: datetime | None
    expires_at: datetime
    token_seed: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One unit of an order as its detail shows it, with the voucher it got (if any)
    and its gift link (LINK orders)."""

    position: int
    status: str
    recharge_status: str
    voucher: SealedVoucher | None
    link: LinkRow | None = None


def _item_row(row: Sequence[Any]) -> ItemRow:
    """An item from its _ITEM_COLUMNS and _LINK_COLUMNS, then its voucher's
    _VOUCHER_COLUMNS if read."""
    position, status, recharge_status = row[:3]
    link_values, voucher = row[3 : 3 + len(_LINK_COLUMNS)], row[3 + len(_LINK_COLUMNS) :]
    link = LinkRow(*link_values) if link_values[0] is not None else None
    sealed = SealedVoucher(*voucher) if voucher and voucher[0] is not None else None
    return ItemRow(position, status, recharge_status, sealed, link)


@dataclass(frozen=True)
class OrderRead:
    """An order with its items at positions up to `chunk` (with their vouchers), and
    the highest position it has: the items past `chunk` are read with
    `order_item_chunks`."""

    order: Order
    items: list[ItemRow]
    last_position: int  # 0: no items
    chunk: int

    @property
    def complete(self) -> bool:
        return self.last_position <= self.chunk


def _order_read_queryset(*, client_id: int, order_id: int, chunk: int) -> QuerySet[Order]:
    first = FilteredRelation("items", condition=Q(items__position__lte=chunk))
    last = OrderItem.objects.filter(order_id=OuterRef("pk")).order_by("-position")
    item_columns = [
        f"first__{name}" for name in (*_ITEM_COLUMNS, *_LINK_COLUMNS, *_VOUCHER_COLUMNS)
    ]
    return (
        Order.objects.filter(client_id=client_id, pk=order_id)
        .annotate(first=first, last_position=Subquery(last.values("position")[:1]))
        .order_by("first__position")
        .values_list(*_ORDER_COLUMNS, "last_position", *item_columns)
    )


_ORDER_READ = Prepared(_order_read_queryset, "client_id", "order_id", "chunk")


def order_read(*, client_id: int, order_id: int, chunk: int = DETAIL_CHUNK) -> OrderRead | None:
    """One of the client's orders with its items and their vouchers, in ONE query
    (order LEFT JOIN its first `chunk` positions LEFT JOIN vouchers), or None
    (another client's too). Bounded by position, not LIMIT: however the planner
    joins, a large order's read touches one chunk of its items. The query is
    compiled once per connection (`Prepared`): an API poll builds no SQL."""
    rows = _ORDER_READ.rows(client_id=client_id, order_id=order_id, chunk=chunk)
    if not rows:
        return None
    split = len(_ORDER_COLUMNS)
    order = Order.from_db(DEFAULT_DB_ALIAS, list(_ORDER_COLUMNS), list(rows[0][:split]))
    items = [_item_row(row[split + 1 :]) for row in rows if row[split + 1] is not None]
    last_position = cast(int | None, rows[0][split]) or 0
    return OrderRead(order=order, items=items, last_position=last_position, chunk=chunk)


def order_item_chunks(
    *, read: OrderRead, with_vouchers: bool, chunk: int = DETAIL_CHUNK
) -> Iterator[list[ItemRow]]:
    """The read order's items past its first chunk, `chunk` at a time by keyset on
    position (one query each), with their vouchers' sealed secrets if asked. The
    keyset picks item ids alone; only those `chunk` items are joined to vouchers."""
    columns = (*_ITEM_COLUMNS, *_LINK_COLUMNS, *(_VOUCHER_COLUMNS if with_vouchers else ()))
    items = OrderItem.objects.filter(order_id=read.order.pk).order_by("position")
    after = read.chunk
    while after < read.last_position:
        page = items.filter(position__gt=after).values("pk")[:chunk]
        rows = list(
            OrderItem.objects.filter(pk__in=page).order_by("position").values_list(*columns)
        )
        if not rows:
            return
        yield [_item_row(row) for row in rows]
        after = rows[-1][0]


def order_voucher_ids(
    *, order_id: int, statuses: Collection[str], after_position: int = 0
) -> list[int]:
    """Ids of the vouchers in `statuses` on the order's items after `after_position`,
    in position order (one query; no secrets read)."""
    return list(
        OrderItem.objects.filter(
            order_id=order_id, position__gt=after_position, voucher__status__in=list(statuses)
        )
        .order_by("position")
        .values_list("voucher_id", flat=True)
    )


def order_undelivered_units(*, order_id: int) -> int:
    """How many of the order's items are not delivered (one count)."""
    return OrderItem.objects.filter(order_id=order_id).exclude(status=ItemStatus.DELIVERED).count()


def order_row_get(*, order_id: int) -> Order:
    """One order as a list row (product and client joined), or NotFound."""
    order = order_queryset(filters=OrderFilters()).filter(pk=order_id).first()
    if order is None:
        raise NotFound()
    return order


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    items: list[OrderItem]
    timeline: list[StatusChange]
    webhook_deliveries: list[WebhookDelivery]
    audit_events: list[AuditEvent]
    delivery_emails: list[DeliveryEmail]


def order_detail(*, order_id: int, audit_limit: int = 200, email_limit: int = 20) -> OrderDetail:
    """An order with its items, timeline, webhook deliveries, delivery e-mails (newest
    first) and audit trail; a fixed number of queries whatever the order's size."""
    order = (
        Order.objects.select_related("product", "client", "transaction", "refund_entry", "wallet")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound()
    items = list(order.items.select_related("voucher").order_by("position"))
    timeline = list(order.status_changes.select_related("actor_user").order_by("created_at", "id"))
    deliveries = list(
        order.webhook_deliveries.select_related("endpoint")
        .prefetch_related(Prefetch("attempt_log"))
        .order_by("created_at", "id")
    )
    audit = list(
        AuditEvent.objects.filter(order_id=order.pk)
        .select_related("actor_user", "voucher")
        .order_by("-created_at", "-id")[:audit_limit]
    )
    emails = list(order.delivery_emails.order_by("-created_at", "-id")[:email_limit])
    return OrderDetail(
        order=order,
        items=items,
        timeline=timeline,
        webhook_deliveries=deliveries,
        audit_events=audit,
        delivery_emails=emails,
    )
