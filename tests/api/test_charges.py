"""POST /api/v1/charges: the quote, and placing the same order charges exactly it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import ProductFactory, add_stock
from tests.helpers.api import make_api_user, order_body

pytestmark = pytest.mark.django_db


def test_quote_breaks_down_the_price(shop):
    product = ProductFactory(
        discount_percent=Decimal("2"), fee_fixed=Decimal("0.50"), tax_percent=Decimal("10")
    )
    add_stock(product, "25.00", 2)
    response = shop.post(
        "/api/v1/charges", {"product_id": product.pk, "denomination": "25.00", "quantity": 2}
    )
    assert response.status_code == 200
    assert response.json() == {
        "product_id": product.pk,
        "denomination": "25.00",
        "quantity": 2,
        "currency": "USD",
        "face_value": "50.00",
        "discount": "1.00",
        "fees": "0.50",
        "taxes": "0.05",
        "total": "49.55",
        "wallet_currency": "USD",
        "exchange_rate": "1",
        "wallet_amount": "49.55",
        "delivery_time": "INSTANT",
    }


def test_placing_the_quoted_order_charges_exactly_the_wallet_amount(system_actor, db):
    euro_shop = make_api_user("Euro Shop", system_actor, currency="EUR")
    product = ProductFactory(currency="USD", fee_fixed=Decimal("0.99"), fee_percent=Decimal("1.5"))
    quote = euro_shop.post(
        "/api/v1/charges", {"product_id": product.pk, "denomination": "50.00", "quantity": 3}
    ).json()
    assert quote["wallet_currency"] == "EUR"
    assert quote["exchange_rate"] != "1"

    placed = euro_shop.post("/api/v1/orders", order_body(product, denomination="50.00", quantity=3))
    assert placed.status_code == 201
    assert placed.json()["wallet_amount"] == quote["wallet_amount"]
    assert placed.json()["amount"] == quote["total"]
    assert euro_shop.balance() == Decimal("500.00") - Decimal(quote["wallet_amount"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"denomination": "25.00"}, "product_id"),
        ({"product_id": 1, "denomination": 25.5}, "denomination"),
        ({"product_id": 999999, "denomination": "25.00"}, "product_id"),
        ({"product_id": "PRODUCT", "denomination": "25.00", "quantity": 1}, "product_id"),
        ({"product_id": 0, "denomination": "25.00"}, "product_id"),
    ],
)
def test_invalid_quotes_name_the_field(shop, product, body, field):
    response = shop.post("/api/v1/charges", body)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert field in {d["field"] for d in response.json()["details"]}


def test_quote_refuses_a_wallet_currency_the_client_lacks(shop, product):
    response = shop.post(
        "/api/v1/charges",
        {"product_id": product.pk, "denomination": "25.00", "wallet_currency": "gbp"},
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "wallet_currency"
