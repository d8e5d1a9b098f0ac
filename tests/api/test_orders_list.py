"""GET /api/v1/orders: keyset pages, filters in any case, only your own orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orders.enums import OrderStatus, SubStatus
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

BASE = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


@pytest.fixture
def history(shop, product):
    """Five orders of the shop, an hour apart, the newest DELIVERED."""
    orders = [
        OrderFactory(
            client=shop.client,
            product=product,
            reference_code=f"H-{n}",
            placed_at=BASE + timedelta(hours=n),
        )
        for n in range(5)
    ]
    newest = orders[-1]
    newest.status, newest.sub_status = OrderStatus.DELIVERED, SubStatus.INVENTORY_FULFILLED
    newest.save(update_fields=["status", "sub_status"])
    return orders


def test_pages_newest_first_until_next_is_null(shop, history):
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = shop.get("/api/v1/orders", params).json()
        seen += [o["reference_code"] for o in page["results"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["H-4", "H-3", "H-2", "H-1", "H-0"]


def test_summaries_have_no_vouchers_and_use_canonical_values(shop, history):
    first = shop.get("/api/v1/orders").json()["results"][0]
    assert "vouchers" not in first
    assert first["status"] == "DELIVERED"
    assert first["amount"] == "25.00"
    assert first["placed_at"] == "2024-01-15T14:30:00Z"


@pytest.mark.parametrize("value", ["delivered", "DELIVERED", "Delivered"])
def test_status_filter_in_any_case(shop, history, value):
    results = shop.get("/api/v1/orders", {"status": value}).json()["results"]
    assert [o["reference_code"] for o in results] == ["H-4"]


def test_status_is_repeatable(shop, history):
    response = shop.get("/api/v1/orders?status=delivered&status=PLACED")
    assert len(response.json()["results"]) == 5


def test_unknown_status_names_the_valid_values(shop, history):
    response = shop.get("/api/v1/orders", {"status": "shipped"})
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "validation_error"
    assert body["details"][0]["field"] == "status"
    assert "DELIVERED" in body["details"][0]["valid"]


def test_filters_by_sub_status_product_reference_and_time(shop, history, product):
    assert (
        len(shop.get("/api/v1/orders", {"sub_status": "inventory_fulfilled"}).json()["results"])
        == 1
    )
    assert len(shop.get("/api/v1/orders", {"product_id": product.pk}).json()["results"]) == 5
    assert len(shop.get("/api/v1/orders", {"product_id": product.pk + 1}).json()["results"]) == 0
    by_ref = shop.get("/api/v1/orders", {"reference_code": "H-2"}).json()["results"]
    assert [o["reference_code"] for o in by_ref] == ["H-2"]
    window = shop.get(
        "/api/v1/orders",
        {"placed_after": "2024-01-15T11:30:00Z", "placed_before": "2024-01-15T13:30:00+00:00"},
    ).json()["results"]
    assert [o["reference_code"] for o in window] == ["H-2", "H-1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"placed_after": "yesterday"}, "placed_after"),
        ({"placed_before": "2024-01-15"}, "placed_before"),
        ({"placed_after": "2024-13-40T00:00:00Z"}, "placed_after"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"product_id": "x"}, "product_id"),
    ],
)
def test_bad_query_parameters_are_400_with_the_field(shop, params, field):
    response = shop.get("/api/v1/orders", params)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert response.json()["details"][0]["field"] == field


def test_another_clients_orders_are_not_listed(shop, rival, history):
    assert rival.get("/api/v1/orders").json() == {"results": [], "next": None}
    assert rival.get("/api/v1/orders", {"reference_code": "H-1"}).json()["results"] == []
