"""GET /api/v1/orders/{id} of a large order: streamed a chunk of vouchers at a time,
complete and well-formed, each voucher once, the same JSON as a small order's, and
a number of queries that grows with the chunks only."""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.enums import DeliveryTime, OrderStatus, SubStatus
from orders.errors import DecryptionFailed
from orders.models import AuditEvent, Order, OrderItem, Voucher
from orders.representations import (
    OrderDetailOut,
    OrderItemOut,
    VoucherOut,
    item_fields,
    order_fields,
    voucher_fields,
)
from orders.selectors.orders import DETAIL_CHUNK
from tests.factories import OrderFactory, add_stock
from tests.helpers.api import ApiUser
from tests.helpers.orders import card_numbers, delivered_order

pytestmark = pytest.mark.django_db


def _read(shop: ApiUser, order: Order) -> tuple[Any, list[str]]:
    """The answer and its body as the pieces it was written in (streamed or not)."""
    response = shop.get(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200
    if response.streaming:
        pieces = [piece.decode() for piece in response.streaming_content]
    else:
        pieces = [response.content.decode()]
    return response, pieces


def test_ten_thousand_vouchers_read_back_complete_each_once_in_chunks(shop):
    order = delivered_order(shop.client, 10_000)

    response, pieces = _read(shop, order)

    assert response.streaming
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    body = json.loads("".join(pieces))  # well-formed
    cards = [v["card_number"] for v in body["vouchers"]]
    # Compared without printing: a failure must not show 10,000 codes.
    assert len(cards) == 10_000
    assert cards == card_numbers(order), "vouchers missing, repeated or out of position order"
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
    order = delivered_order(shop.client, DETAIL_CHUNK + 7, delivered=DETAIL_CHUNK + 3)

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
    order = delivered_order(shop.client, DETAIL_CHUNK)

    response, _pieces = _read(shop, order)

    assert not response.streaming
    assert [v["card_number"] for v in response.json()["vouchers"]] == card_numbers(order)


def _statements(shop: ApiUser, order: Order) -> list[str]:
    shop.get("/api/v1/orders")  # the credential is cached by now
    with CaptureQueriesContext(connection) as queries:
        _read(shop, order)
    return [q["sql"] for q in queries.captured_queries]


def _audit_statement(sql: str) -> bool:
    return "orders_audit" in sql or sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))


@pytest.mark.parametrize("units", [DETAIL_CHUNK + 1, 4 * DETAIL_CHUNK + 1])
def test_queries_of_a_large_read_grow_with_its_chunks_only(shop, units):
    order = delivered_order(shop.client, units)

    sql = _statements(shop, order)

    inserts = [s for s in sql if s.replace('"', "").startswith("INSERT INTO orders_auditevent")]
    assert len(inserts) == 1
    reads = [s for s in sql if not _audit_statement(s)]
    # The order with its first chunk, the ids of every delivered voucher (audited
    # before any is written), then one query per further chunk; no credential read.
    chunks = math.ceil((units - DETAIL_CHUNK) / DETAIL_CHUNK)
    assert len(reads) == 2 + chunks, "\n".join(s[:120] for s in reads)
    assert not [s for s in sql if "orders_apicredential" in s]


def test_the_fast_row_writers_dump_what_the_schemas_dump():
    expires = timezone.now()
    vouchers = [
        SimpleNamespace(
            card_number="6011000000000001",
            pin_code="1234",
            claim_url="https://redeem.example.com/1",
            voucher_reference_number="REF-1",
            expires_at=expires,
        ),
        SimpleNamespace(
            card_number="6011000000000002",
            pin_code=None,
            claim_url=None,
            voucher_reference_number=None,
            expires_at=None,
        ),
    ]
    for voucher in vouchers:
        assert voucher_fields(voucher) == VoucherOut.model_validate(voucher).model_dump()
    for recharge_status in ("", "RECHARGED"):
        item = SimpleNamespace(position=3, status="DELIVERED", recharge_status=recharge_status)
        assert item_fields(item) == OrderItemOut.model_validate(item).model_dump()
    assert list(voucher_fields(vouchers[0])) == list(VoucherOut.model_fields)


def test_the_fast_order_writer_dumps_what_the_schema_dumps(shop):
    placed = OrderFactory(client=shop.client, status=OrderStatus.PLACED, transaction_id=None)
    delivered = delivered_order(shop.client, 2)
    Order.objects.filter(pk=delivered.pk).update(
        wallet_currency="", customer_name="Ada", customer_email="ada@example.com"
    )
    for order in (placed, Order.objects.get(pk=delivered.pk)):
        for delivery_time in (DeliveryTime.INSTANT, DeliveryTime.DELAYED):
            schema = OrderDetailOut.of(
                order, vouchers=[], delivery_time=delivery_time, items=[]
            ).model_dump()
            fields = order_fields(order, delivery_time=delivery_time)
            assert fields == schema
            assert list(fields) == list(schema)  # the same order of keys: the same bytes


def test_a_voucher_failing_to_decrypt_past_the_first_chunk_cuts_the_answer_short(shop, caplog):
    order = delivered_order(shop.client, DETAIL_CHUNK + 2)
    voucher = Voucher.objects.get(order_item__order=order, order_item__position=DETAIL_CHUNK + 2)
    stored = voucher.card_number.ciphertext
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_voucher SET card_number = %s WHERE id = %s", [tampered, voucher.pk]
        )

    response = shop.get(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200  # the status line goes out before the last chunk
    written: list[bytes] = []
    with caplog.at_level(logging.ERROR), pytest.raises(DecryptionFailed):
        for piece in response.streaming_content:
            written.append(piece)

    text = b"".join(written).decode() + caplog.text
    assert "Voucher decryption failed" in caplog.text
    assert text.count('"card_number"') == DETAIL_CHUNK  # the first chunk only
    assert tampered.split(":")[-1] not in text and stored.split(":")[-1] not in text


def test_a_large_open_order_lists_every_item_no_voucher_and_no_event(shop):
    order = OrderFactory(
        client=shop.client,
        quantity=DETAIL_CHUNK + 50,
        status=OrderStatus.PENDING,
        sub_status=SubStatus.PROCESSING,
    )
    OrderItem.objects.bulk_create(
        OrderItem(order=order, position=n) for n in range(1, DETAIL_CHUNK + 51)
    )
    add_stock(order.product, "25.00", DETAIL_CHUNK + 49)  # one unit short

    response, pieces = _read(shop, order)

    assert response.streaming
    body = json.loads("".join(pieces))
    assert body["vouchers"] == []
    assert [i["position"] for i in body["items"]] == list(range(1, DETAIL_CHUNK + 51))
    assert body["delivery_time"] == "DELAYED"
    assert not AuditEvent.objects.filter(order_id=order.pk).exists()
    add_stock(order.product, "25.00", 1)
    assert json.loads("".join(_read(shop, order)[1]))["delivery_time"] == "INSTANT"
