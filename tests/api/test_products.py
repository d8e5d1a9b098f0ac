"""Products: public fields only, live delivery time, availability."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.enums import Classification, LinkType
from tests.factories import ProductFactory, VoucherFactory, add_stock

pytestmark = pytest.mark.django_db

PUBLIC_FIELDS = {
    "id",
    "name",
    "brand",
    "kind",
    "currency",
    "denominations",
    "min_denomination",
    "max_denomination",
    "delivery_type",
    "delivery_time",
    "instant_denominations",
    "bulk_limit",
    "description",
}


def test_list_shows_active_products_with_public_fields_only(shop, product):
    ProductFactory(name="Retired", is_active=False)
    product.classification, product.link_type = Classification.OPEN_LOOP, LinkType.PROTECTED
    product.save()
    response = shop.get("/api/v1/products")
    results = response.json()["results"]
    assert response.status_code == 200
    assert [p["name"] for p in results] == ["Acme Gift Card"]
    assert set(results[0]) == PUBLIC_FIELDS
    text = response.content.decode()
    for internal in ("OPEN_LOOP", "PROTECTED", "AVAILABLE", "classification", "link_type"):
        assert internal not in text
    assert results[0]["denominations"] == ["10.00", "25.00", "50.00"]


def test_delivery_time_is_instant_only_when_every_denomination_is_in_stock(shop, product):
    add_stock(product, "10.00", 1)
    add_stock(product, "25.00", 1)
    first = shop.get(f"/api/v1/products/{product.pk}").json()
    assert first["delivery_time"] == "DELAYED"
    assert first["instant_denominations"] == ["10.00", "25.00"]
    add_stock(product, "50.00", 1)
    assert shop.get(f"/api/v1/products/{product.pk}").json()["delivery_time"] == "INSTANT"


def test_expired_or_allocated_units_do_not_count(shop, product):
    from datetime import timedelta

    from django.utils import timezone

    VoucherFactory(
        product=product,
        denomination=Decimal("10.00"),
        expires_at=timezone.now() - timedelta(days=1),
    )
    VoucherFactory(product=product, denomination=Decimal("10.00"), status="ALLOCATED")
    assert shop.get(f"/api/v1/products/{product.pk}").json()["instant_denominations"] == []


def test_range_products_show_min_and_max(shop):
    product = ProductFactory(
        denominations=[], min_denomination=Decimal("5.00"), max_denomination=Decimal("100.00")
    )
    body = shop.get(f"/api/v1/products/{product.pk}").json()
    assert body["denominations"] is None
    assert (body["min_denomination"], body["max_denomination"]) == ("5.00", "100.00")
    assert body["delivery_time"] == "DELAYED"
    add_stock(product, "20.00", 1)
    assert shop.get(f"/api/v1/products/{product.pk}").json()["delivery_time"] == "INSTANT"


def test_list_costs_the_same_queries_for_one_or_many_products(shop, product):
    shop.get("/api/v1/products")  # warm the credential cache
    with CaptureQueriesContext(connection) as one:
        shop.get("/api/v1/products")
    for n in range(5):
        extra = ProductFactory()
        add_stock(extra, "25.00", n + 1)
    with CaptureQueriesContext(connection) as many:
        assert len(shop.get("/api/v1/products").json()["results"]) == 6
    assert len(many) == len(one)


def test_unknown_or_inactive_product_is_404(shop):
    retired = ProductFactory(is_active=False)
    for pk in (retired.pk, retired.pk + 100):
        response = shop.get(f"/api/v1/products/{pk}")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_availability_counts_stock_for_the_quantity(shop, product):
    add_stock(product, "25.00", 2)
    url = f"/api/v1/products/{product.pk}/availability"
    enough = shop.get(url, {"denomination": "25.00", "quantity": 2}).json()
    assert enough == {
        "product_id": product.pk,
        "denomination": "25.00",
        "quantity": 2,
        "available": True,
        "available_units": 2,
        "delivery_time": "INSTANT",
    }
    short = shop.get(url, {"denomination": "25", "quantity": 3}).json()
    assert (short["available"], short["delivery_time"]) == (False, "DELAYED")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"denomination": "30.00"}, "denomination"),
        ({"denomination": "abc"}, "denomination"),
        ({}, "denomination"),
        ({"denomination": "25.00", "quantity": 11}, "quantity"),
        ({"denomination": "25.00", "quantity": 0}, "quantity"),
    ],
)
def test_availability_validates_like_placing(shop, product, params, field):
    response = shop.get(f"/api/v1/products/{product.pk}/availability", params)
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == field
