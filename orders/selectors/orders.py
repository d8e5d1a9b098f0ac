"""Order reads of the support workspace and the API: filters, search, one
order's detail; every list is one query with product and client joined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, Q, QuerySet

from orders.enums import OrderStatus, SubStatus
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
