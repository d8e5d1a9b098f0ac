"""GET /api/v1/orders/{id} of a large order: streamed a chunk of vouchers at a time,
complete and well-formed, each voucher once, the same JSON as a small order's, and
a number of queries that grows with the chunks only."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import DeliveryTime, InventoryStatus, ItemStatus, OrderStatus, SubStatus
from orders.models import AuditEvent, Order, OrderItem, Voucher
from orders.representations import OrderDetailOut
from orders.selectors.orders import DETAIL_CHUNK
from tests.factories import OrderFactory, ProductFactory, VoucherFactory
from tests.helpers.api import ApiUser

pytestmark = pytest.mark.django_db


def _delivered(shop: ApiUser, units: int, *, delivered: int | None = None) -> Order:
    """An order of `units` placed by the shop, its first `delivered` (all by default)
    units delivered from stock; vouchers and items written with bulk_create."""
    delivered = units if delivered is None else delivered
    product = ProductFactory(bulk_limit=units)
    now = timezone.now()
    status, sub_status = (
        (OrderStatus.DELIVERED, SubStatus.INVENTORY_FULFILLED)
        if delivered == units
        else (OrderStatus.PARTIALLY_DELIVERED, SubStatus.PARTIAL)
    )
    order = OrderFactory(
        client=shop.client,
        product=product,
        quantity=units,
        status=status,
        sub_status=sub_status,
        delivered_at=now,
    )
    vouchers = Voucher.objects.bulk_create(
        VoucherFactory.build(
            product=product,
            denomination=Decimal("25.00"),
            card_number=f"6011{order.pk:06d}{n:06d}",
            status=InventoryStatus.DELIVERED,
            delivered_at=now,
        )
        for n in range(delivered)
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            position=n + 1,
            voucher=vouchers[n] if n < delivered else None,
            status=ItemStatus.DELIVERED if n < delivered else ItemStatus.FAILED,
            delivered_at=now if n < delivered else None,
        )
        for n in range(units)
    )
    return order


def _read(shop: ApiUser, order: Order) -> tuple[Any, list[str]]:
    """The answer and its body as the pieces it was written in (streamed or not)."""
    response = shop.get(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200
    if response.streaming:
        pieces = [piece.decode() for piece in response.streaming_content]
    else:
        pieces = [response.content.decode()]
    return response, pieces


def _cards(order: Order) -> list[str]:
    return [f"6011{order.pk:06d}{n:06d}" for n in range(order.quantity)]


def test_ten_thousand_vouchers_read_back_complete_each_once_in_chunks(shop):
    order = _delivered(shop, 10_000)

    response, pieces = _read(shop, order)

    assert response.streaming
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    body = json.loads("".join(pieces))  # well-formed
    cards = [v["card_number"] for v in body["vouchers"]]
    # Compared without printing: a failure must not show 10,000 codes.
    assert len(cards) == 10_000
    assert cards == _cards(order), "vouchers missing, repeated or out of position order"
    assert [i["position"] for i in body["items"]] == list(range(1, 10_001))
    assert {i["status"] for i in body["items"]} == {"DELIVERED"}
    assert body["quantity"] == 10_000 and body["status"] == "DELIVERED"
    # Written a chunk at a time: no piece carries more than one chunk of vouchers.
    assert len(pieces) > 10_000 // DETAIL_CHUNK
    assert max(piece.count('"card_number"') for piece in pieces) <= DETAIL_CHUNK
    event = AuditEvent.objects.get(action="voucher.read_api", order_id=order.pk)
    audited = list(
        OrderItem.objects.filter(order=order)
        .order_by("position")
        .values_list("voucher_id", flat=True)
    )
    assert event.data["voucher_ids"] == audited


def test_a_streamed_answer_is_the_same_json_as_the_schema_renders(shop):
    order = _delivered(shop, DETAIL_CHUNK + 7, delivered=DETAIL_CHUNK + 3)

    response, pieces = _read(shop, order)

    assert response.streaming
    streamed = "".join(pieces)
    body = json.loads(streamed)
    assert body["status"] == "PARTIALLY_DELIVERED"
    assert len(body["vouchers"]) == DETAIL_CHUNK + 3
    assert [i["status"] for i in body["items"][-5:]] == ["DELIVERED"] + ["FAILED"] * 4
    # Byte for byte what the schema gives for the same vouchers, as ninja renders it.
    expected = OrderDetailOut.of(
        Order.objects.get(pk=order.pk),
        vouchers=[SimpleNamespace(**voucher) for voucher in body["vouchers"]],
        delivery_time=DeliveryTime.DELAYED,
    ).model_dump()
    assert list(body) == list(OrderDetailOut.model_fields)
    assert streamed == json.dumps(expected)


def test_an_order_of_one_chunk_is_answered_whole(shop):
    order = _delivered(shop, DETAIL_CHUNK)

    response, _pieces = _read(shop, order)

    assert not response.streaming
    assert [v["card_number"] for v in response.json()["vouchers"]] == _cards(order)


def _statements(shop: ApiUser, order: Order) -> list[str]:
    shop.get("/api/v1/orders")  # the credential is cached by now
    with CaptureQueriesContext(connection) as queries:
        _read(shop, order)
    return [q["sql"] for q in queries.captured_queries]


def _audit_statement(sql: str) -> bool:
    return "orders_audit" in sql or sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))


@pytest.mark.parametrize("units", [DETAIL_CHUNK + 1, 4 * DETAIL_CHUNK + 1])
def test_queries_of_a_large_read_grow_with_its_chunks_only(shop, units):
    order = _delivered(shop, units)

    sql = _statements(shop, order)

    inserts = [s for s in sql if s.startswith('INSERT INTO "orders_auditevent"')]
    assert len(inserts) == 1
    reads = [s for s in sql if not _audit_statement(s)]
    # The order with its first chunk, the ids of every delivered voucher (audited
    # before any is written), then one query per further chunk; no credential read.
    chunks = math.ceil((units - DETAIL_CHUNK) / DETAIL_CHUNK)
    assert len(reads) == 2 + chunks, "\n".join(s[:120] for s in reads)
    assert not [s for s in sql if "orders_apicredential" in s]
