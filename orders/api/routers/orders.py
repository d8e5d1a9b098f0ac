"""Orders: create (idempotent on reference_code), list, and details with vouchers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Path, Query, Router

from orders import logs, rules
from orders.api import ratelimit
from orders.api.auth import scoped
from orders.api.errors import ApiError
from orders.api.schemas import (
    BODY_ERRORS,
    MAX_ID,
    CustomerIn,
    ErrorOut,
    OrderCreateIn,
    OrderPageOut,
    TimestampQuery,
    any_case_schema,
)
from orders.enums import ApiScope, DeliveryTime, ItemStatus, OrderStatus, SubStatus
from orders.errors import DecryptionFailed, NotFound, ValidationFailed
from orders.models import Order
from orders.representations import OrderDetailOut, order_detail_json
from orders.selectors.inventory import available_stock
from orders.selectors.orders import (
    ItemRow,
    OrderFilters,
    order_list,
    order_undelivered_units,
)
from orders.selectors.paging import CURSOR_PATTERN, Page
from orders.services.placing import Customer, order_create
from orders.services.reveal import OrderReveal, RevealedVoucher, order_detail_reveal

logger = logging.getLogger("orders.api")
router = Router(tags=["Orders"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut, 500: ErrorOut}
JSON_CONTENT_TYPE = "application/json; charset=utf-8"  # as ninja's renderer answers
# RFC 3339; a "+" in a query string arrives as a space, so a space offset is read as "+".
RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+\- ]\d{2}:\d{2})$"
)


def order_delivery_time(
    order: Order, *, undelivered: Callable[[], int] | None = None
) -> DeliveryTime:
    """INSTANT if the order was filled from inventory (a LINK order too), or is still open and
    AVAILABLE stock covers its undelivered units now; else DELAYED. Only an open
    order costs a query (its stock); `undelivered` counts its units not delivered
    yet (by default from `order.items`)."""
    if rules.filled_from_inventory(
        sub_status=order.sub_status, vendor_order_ref=order.vendor_order_ref
    ):
        return DeliveryTime.INSTANT
    if not rules.is_open(order.status):
        return DeliveryTime.DELAYED
    if undelivered is None:
        missing = sum(1 for item in order.items.all() if item.status != ItemStatus.DELIVERED)
    else:
        missing = undelivered()
    if not missing:  # nothing left to deliver waits on the vendor
        return DeliveryTime.INSTANT
    stock = available_stock(
        product_id=order.product_id, denomination=order.denomination, at_most=missing
    )
    return rules.delivery_time(stock=stock, units=missing)


def _undelivered(reveal: OrderReveal) -> Callable[[], int]:
    def count() -> int:
        if not reveal.complete:
            return order_undelivered_units(order_id=reveal.order.pk)
        return sum(1 for item in reveal.items if item.status != ItemStatus.DELIVERED)

    return count


def _decryption_failed(order_id: int, exc: DecryptionFailed) -> None:
    # The message names the field and key id only, never the ciphertext.
    logger.error("Voucher decryption failed for order %s: %s", order_id, exc.message)


def _streamed(reveal: OrderReveal, delivery_time: DeliveryTime) -> StreamingHttpResponse:
    """A large order's answer, written a chunk of vouchers at a time (its audit
    event is already committed). A voucher that fails to decrypt past the first
    chunk cuts the answer short: the status line has gone out by then."""

    def chunks() -> Iterator[tuple[list[ItemRow], list[RevealedVoucher]]]:
        yield reveal.items, reveal.vouchers
        try:
            yield from reveal.rest()
        except DecryptionFailed as exc:
            _decryption_failed(reveal.order.pk, exc)
            raise

    body = order_detail_json(
        reveal.order,
        chunks=chunks(),
        delivery_time=delivery_time,
        vouchers_redacted=reveal.withheld,
    )
    return StreamingHttpResponse(body, content_type=JSON_CONTENT_TYPE)


def _timestamp(value: str | None, *, field: str) -> datetime | None:
    if value is None:
        return None
    match = RFC3339_RE.match(value.strip())
    if match:
        day, clock, fraction, offset = match.groups()
        fraction = (fraction or "")[:7]  # any precision is RFC 3339; Python keeps µs
        offset = "+00:00" if offset in "Zz" else offset.replace(" ", "+")
        try:
            # In UTC at once: the database refuses some offsets RFC 3339 allows
            # (PostgreSQL stops at 15:59), and a far offset can leave the calendar.
            return datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}").astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    raise ValidationFailed(
        f"{field} must be an RFC 3339 timestamp like 2024-01-15T10:30:00Z.", field=field
    )


def _customer(customer: CustomerIn | None) -> Customer | None:
    if customer is None:
        return None
    return Customer(name=customer.name, email=customer.email, phone=customer.phone)


def _enum_values(values: list[str] | None, enum: type, *, field: str) -> list:
    parsed = []
    for raw in values or []:
        for part in raw.split(","):
            if part.strip():
                parsed.append(enum.parse(part, field=field))  # type: ignore[attr-defined]
    return parsed


@router.post(
    "",
    auth=scoped(ApiScope.ORDERS_WRITE),
    response={
        201: OrderDetailOut,
        200: OrderDetailOut,
        400: ErrorOut,
        402: ErrorOut,
        409: ErrorOut,
        **BODY_ERRORS,
        **ERRORS,
    },
    summary="Create an order",
)
def order_create_view(request: HttpRequest, payload: OrderCreateIn) -> HttpResponse:
    """Place an order paid from your wallet; fulfilment starts in the background.

    201: created (the wallet was debited). 200: the same request with the same
    reference_code again: the existing order, no money moved. 409: that
    reference_code was used for a different request. 402 insufficient_funds:
    the wallet cannot pay; nothing was written. Vouchers are returned only by
    GET /orders/{id}, so `vouchers` is always [] here (and `vouchers_redacted`
    says whether this credential would see their secrets there).
    """
    principal = request.auth  # type: ignore[attr-defined]
    placed = order_create(
        client=principal.client,
        actor=principal.actor(request),
        credential=principal.credential,
        product_id=payload.product_id,
        denomination=payload.denomination,
        quantity=payload.quantity,
        reference_code=payload.reference_code,
        customer=_customer(payload.customer),
        payment_method=payload.payment_method,
        recipient_phone=payload.recipient_phone,
        wallet_currency=payload.wallet_currency,
        delivery_method=payload.delivery_method,
    )
    # The order as placing wrote (or, for a replay, read) it, items included: the
    # answer reads nothing back but the stock that decides its delivery time, and
    # is OrderDetailOut's JSON written straight from the columns.
    order = placed.order
    logs.bind(order_id=order.pk)
    body = order_detail_json(
        order,
        chunks=[(list(order.items.all()), [])],
        delivery_time=order_delivery_time(order),
        vouchers_redacted=not principal.holds(ApiScope.VOUCHERS_READ),
    )
    return HttpResponse(
        "".join(body), status=201 if placed.created else 200, content_type=JSON_CONTENT_TYPE
    )


@router.get(
    "",
    auth=scoped(ApiScope.ORDERS_READ),
    response={200: OrderPageOut, 400: ErrorOut, **ERRORS},
    summary="List orders",
)
def order_list_view(
    request: HttpRequest,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN, max_length=41)] = None,
    status: Annotated[
        list[Annotated[str, any_case_schema(OrderStatus)]] | None,
        Query(description="Repeatable or comma-separated, any case: status=pending,DELIVERED"),
    ] = None,
    sub_status: Annotated[
        list[Annotated[str, any_case_schema(SubStatus)]] | None,
        Query(description="Repeatable or comma-separated, any case."),
    ] = None,
    product_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    reference_code: Annotated[
        str | None, Query(pattern=rules.REFERENCE_PATTERN, max_length=100)
    ] = None,
    placed_after: Annotated[
        TimestampQuery | None,
        Query(description="RFC 3339, inclusive", example="2024-01-15T00:00:00Z"),
    ] = None,
    placed_before: Annotated[
        TimestampQuery | None,
        Query(description="RFC 3339, exclusive", example="2024-02-01T00:00:00Z"),
    ] = None,
) -> Page:
    """Your orders, newest first, by keyset: follow `next` until it is null.
    Summaries carry no vouchers."""
    filters = OrderFilters(
        client_id=request.auth.client.pk,  # type: ignore[attr-defined]
        statuses=_enum_values(status, OrderStatus, field="status"),
        sub_statuses=_enum_values(sub_status, SubStatus, field="sub_status"),
        product_id=product_id,
        reference_code=(reference_code or "").strip(),
        placed_after=_timestamp(placed_after, field="placed_after"),
        placed_before=_timestamp(placed_before, field="placed_before"),
    )
    return order_list(filters=filters, cursor=cursor or None, limit=limit)


@router.get(
    "/{id}",
    auth=scoped(ApiScope.ORDERS_READ),
    response={200: OrderDetailOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Get order details",
    url_name=ratelimit.ORDER_DETAIL_ROUTE,  # its window is counted with the credential's
)
def order_detail(
    request: HttpRequest, id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> HttpResponse | StreamingHttpResponse:
    """One of your orders with its decrypted vouchers once DELIVERED or
    PARTIALLY_DELIVERED (only the delivered ones), else `vouchers: []`. A LINK
    order's vouchers carry only `claim_url` (the unit's hosted gift link) and
    `expires_at` (the link's): the code is shown to the link's recipient alone.

    Each read that returns vouchers is audited. At most 60 reads per order per hour.
    Without the vouchers:read scope each voucher's secrets are null and
    `vouchers_redacted` is true (nothing was decrypted, nothing audited).
    """
    # One query reads the order, its items and vouchers; one INSERT audits the read,
    # committed before the answer is written. An order of more than DETAIL_CHUNK
    # units is streamed: its vouchers are read and decrypted a chunk at a time.
    principal = request.auth  # type: ignore[attr-defined]
    logs.bind(order_id=id)
    ratelimit.order_read_hit(  # counted already when the credential was (one round trip)
        request, credential_id=principal.credential.pk, order_id=id
    )
    try:
        reveal = order_detail_reveal(
            client_id=principal.client.pk,
            order_id=id,
            actor=principal.actor(request),
            with_secrets=principal.holds(ApiScope.VOUCHERS_READ),
            link_base_url=request.build_absolute_uri("/"),
        )
    except DecryptionFailed as exc:
        _decryption_failed(id, exc)
        raise ApiError(500, "internal_error", "Failed to retrieve order") from None
    if reveal is None:
        raise NotFound()
    delivery_time = order_delivery_time(reveal.order, undelivered=_undelivered(reveal))
    if not reveal.complete:
        return _streamed(reveal, delivery_time)
    # OrderDetailOut's JSON written straight from the rows (order_detail_json).
    body = order_detail_json(
        reveal.order,
        chunks=[(reveal.items, reveal.vouchers)],
        delivery_time=delivery_time,
        vouchers_redacted=reveal.withheld,
    )
    return HttpResponse("".join(body), content_type=JSON_CONTENT_TYPE)
