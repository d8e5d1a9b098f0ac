"""POST /api/v1/orders: created once per reference_code, clear refusals, no double debit."""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client as HttpClient

from orders import rules
from orders.enums import ProductKind, WalletEntryKind
from orders.models import Order, WalletEntry
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user, order_body

pytestmark = pytest.mark.django_db

SPEC_FIELDS = {
    "id",
    "reference_code",
    "transaction_id",
    "amount",
    "product_id",
    "denomination",
    "quantity",
    "discount",
    "vouchers",
    "status",
    "placed_at",
}


def test_create_answers_201_with_the_order_and_debits_the_wallet(shop, product):
    response = shop.post("/api/v1/orders", order_body(product, quantity=2))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= SPEC_FIELDS
    assert body["status"] == "PLACED"
    assert body["sub_status"] == "INITIAL"
    assert body["amount"] == "50.00"
    assert body["denomination"] == "25.00"
    assert body["vouchers"] == []
    assert body["customer"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+447700900123",
    }
    assert [i["position"] for i in body["items"]] == [1, 2]
    assert all(i["status"] == "PENDING" and i["recharge_status"] is None for i in body["items"])
    assert shop.balance() == Decimal("450.00")
    entry = WalletEntry.objects.get(pk=body["transaction_id"])
    assert entry.kind == WalletEntryKind.ORDER_DEBIT
    assert entry.amount == Decimal("-50.00")


@pytest.mark.parametrize("kind", [ProductKind.GIFT_CARD, ProductKind.MOBILE_TOPUP])
def test_the_answer_is_byte_for_byte_what_reading_the_order_answers(shop, kind):
    """The answer is made from the order placing wrote, not read back: it must be the
    order exactly as GET /orders/{id} shows it, and a replay answers the same."""
    product = ProductFactory(kind=kind, denominations=["25.00"])
    phone = "+447700900123" if kind == ProductKind.MOBILE_TOPUP else ""
    body = order_body(product, quantity=3, recipient_phone=phone)
    created = shop.post("/api/v1/orders", body)
    assert created.status_code == 201, created.content
    read = shop.get(f"/api/v1/orders/{created.json()['id']}")
    replayed = shop.post("/api/v1/orders", body)
    assert (read.status_code, replayed.status_code) == (200, 200)
    assert created.content == read.content == replayed.content


def test_identical_replay_answers_200_with_the_same_order_and_moves_no_money(shop, product):
    first = shop.post("/api/v1/orders", order_body(product))
    replay = shop.post("/api/v1/orders", order_body(product))
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert shop.balance() == Decimal("475.00")
    assert WalletEntry.objects.filter(kind=WalletEntryKind.ORDER_DEBIT).count() == 1


def test_same_reference_code_with_a_different_body_is_a_conflict(shop, product):
    assert shop.post("/api/v1/orders", order_body(product)).status_code == 201
    response = shop.post("/api/v1/orders", order_body(product, quantity=3))
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert shop.balance() == Decimal("475.00")


def test_reference_codes_are_per_client(shop, rival, product):
    mine = shop.post("/api/v1/orders", order_body(product))
    theirs = rival.post("/api/v1/orders", order_body(product))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.parametrize("denomination", ["25.00", "25", 25])
def test_denomination_as_string_or_integer(shop, product, denomination):
    response = shop.post("/api/v1/orders", order_body(product, denomination=denomination))
    assert response.status_code == 201
    assert response.json()["denomination"] == "25.00"


def test_float_denomination_is_refused_with_advice_to_send_a_string(shop, product):
    raw = json.dumps(order_body(product)).replace('"25.00"', "25.0")
    response = shop.post("/api/v1/orders", raw)
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "validation_error"
    assert body["details"][0]["field"] == "denomination"
    assert "string" in body["details"][0]["message"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reference_code": ""}, "reference_code"),
        ({"reference_code": None}, "reference_code"),
        ({"denomination": "30.00"}, "denomination"),
        ({"denomination": "25.001"}, "denomination"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 11}, "quantity"),
        ({"quantity": "2"}, "quantity"),
        ({"product_id": 999999}, "product_id"),
        ({"payment_method": "card"}, "payment_method"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
        ({"customer": {"name": "Ada\x00"}}, "customer.name"),
        ({"recipient_phone": "+447700900123"}, "recipient_phone"),
        ({"wallet_currency": "EUR"}, "wallet_currency"),
    ],
)
def test_invalid_orders_are_refused_with_the_field_and_nothing_is_written(
    shop, product, overrides, field
):
    body = order_body(product, **overrides)
    if overrides.get("reference_code") is None and "reference_code" in overrides:
        del body["reference_code"]
    response = shop.post("/api/v1/orders", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "validation_error"
    assert field in {d["field"] for d in response.json()["details"]}
    assert Order.objects.count() == 0
    assert shop.balance() == Decimal("500.00")


def test_an_order_of_the_largest_bulk_limit_is_placed_and_one_more_unit_refused(system_actor):
    bulk_shop = make_api_user("Campaign Shop", system_actor, balance="300000.00")
    product = ProductFactory(denominations=["25.00"], bulk_limit=rules.MAX_BULK_LIMIT)
    too_many = bulk_shop.post(
        "/api/v1/orders", order_body(product, quantity=rules.MAX_BULK_LIMIT + 1)
    )
    assert too_many.status_code == 400
    assert too_many.json()["details"][0]["field"] == "quantity"
    assert "exceeds this product's bulk limit of 10000" in too_many.json()["message"]

    response = bulk_shop.post("/api/v1/orders", order_body(product, quantity=rules.MAX_BULK_LIMIT))
    assert response.status_code == 201, response.content[:500]
    body = response.json()
    assert (body["quantity"], body["amount"]) == (10_000, "250000.00")
    assert [item["position"] for item in body["items"]] == list(range(1, 10_001))
    assert {item["status"] for item in body["items"]} == {"PENDING"}
    assert bulk_shop.balance() == Decimal("50000.00")
    assert Order.objects.get(pk=body["id"]).items.count() == 10_000


def test_payment_method_in_any_case(shop, product):
    response = shop.post("/api/v1/orders", order_body(product, payment_method="wallet"))
    assert response.status_code == 201
    assert Order.objects.get().payment_method == "WALLET"


def test_insufficient_funds_is_402_and_writes_nothing(system_actor, product):
    poor = make_api_user("Poor Shop", system_actor, balance="20.00")
    response = poor.post("/api/v1/orders", order_body(product, denomination="25.00"))
    assert response.status_code == 402
    assert response.json()["error"] == "insufficient_funds"
    assert Order.objects.count() == 0
    assert poor.balance() == Decimal("20.00")


def test_mobile_topup_needs_a_recipient_and_reports_recharge_status(shop):
    topup = ProductFactory(kind=ProductKind.MOBILE_TOPUP, denominations=["10.00"])
    missing = shop.post("/api/v1/orders", order_body(topup, denomination="10.00"))
    assert missing.status_code == 400
    assert missing.json()["details"][0]["field"] == "recipient_phone"
    ok = shop.post(
        "/api/v1/orders",
        order_body(topup, denomination="10.00", recipient_phone="+447700900123"),
    )
    assert ok.status_code == 201
    assert ok.json()["items"][0]["recharge_status"] == "PENDING"


def test_paying_from_another_currency_wallet_reports_the_wallet_amount(system_actor, db):
    euro_shop = make_api_user("Euro Shop", system_actor, currency="EUR")
    product = ProductFactory(currency="USD")
    response = euro_shop.post("/api/v1/orders", order_body(product, denomination="10.00"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["wallet_currency"] == "EUR"
    assert euro_shop.balance() == Decimal("500.00") - Decimal(body["wallet_amount"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_identical_requests_place_one_order(system_actor):
    shop = make_api_user("Race Shop", system_actor)
    product = ProductFactory()
    body = json.dumps(order_body(product, reference_code="RACE-1"))
    results: list[tuple[int, int | None]] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def place() -> None:
        try:
            start.wait(timeout=10)
            response = HttpClient().post(
                "/api/v1/orders", body, content_type="application/json", headers=shop.headers
            )
            with lock:
                results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=place) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 16
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1 and statuses.count(200) == 15, statuses
    assert len({order_id for _, order_id in results}) == 1
    assert Order.objects.filter(client=shop.client, reference_code="RACE-1").count() == 1
    assert (
        WalletEntry.objects.filter(wallet=shop.wallet, kind=WalletEntryKind.ORDER_DEBIT).count()
        == 1
    )
    assert shop.balance() == Decimal("475.00")
