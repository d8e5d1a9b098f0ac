"""Odd input from a partner or an outsider: always a JSON 4xx, never a 500 or HTML."""

from __future__ import annotations

import base64
import json
from datetime import timedelta, timezone
from decimal import Decimal

import pytest

from orders.models import Order
from tests.factories import ProductFactory
from tests.helpers.api import order_body

pytestmark = pytest.mark.django_db

BODY_ENDPOINTS = ["/api/v1/orders", "/api/v1/charges", "/api/v1/auth/token"]


def crafted_cursor(*parts: object) -> str:
    """A cursor as the API encodes one, holding whatever a client put in it."""
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_validation_error(response, field: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["message"]
    assert body["details"][0]["field"] == field


# --- Query parameters -----------------------------------------------------------


@pytest.mark.parametrize(
    "denomination",
    ["1e400", "1E5", "NaN", "nan", "Infinity", "-Infinity", "-0", "-25.00", "9" * 19, "25.001"],
)
def test_availability_refuses_non_amounts(shop, product, denomination):
    response = shop.get(
        f"/api/v1/products/{product.pk}/availability", {"denomination": denomination}
    )
    assert_validation_error(response, "denomination")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("placed_after", "0001-01-01T00:00:00-23:59"),
        ("placed_after", "0001-01-01T00:00:00+23:59"),
        ("placed_before", "9999-12-31T23:59:59+23:59"),
        ("placed_before", "9999-12-31T23:59:59-23:59"),
    ],
)
def test_order_list_answers_extreme_timestamps(shop, product, field, value):
    shop.post("/api/v1/orders", order_body(product))
    response = shop.get("/api/v1/orders", {field: value})
    if response.status_code == 200:
        # A time the database can hold is a filter like any other.
        assert set(response.json()) == {"results", "next"}
    else:
        assert_validation_error(response, field)


def test_order_list_reads_a_far_offset_as_that_instant(shop, product):
    order = Order.objects.get(pk=shop.post("/api/v1/orders", order_body(product)).json()["id"])
    # The same instant written with an offset PostgreSQL cannot hold (over 15:59).
    far = order.placed_at.astimezone(timezone(-timedelta(hours=23, minutes=59)))
    listed = shop.get("/api/v1/orders", {"placed_after": far.isoformat()})
    assert [o["id"] for o in listed.json()["results"]] == [order.pk]
    later = shop.get("/api/v1/orders", {"placed_before": far.isoformat()}).json()
    assert later["results"] == []


CRAFTED_CURSORS = [
    crafted_cursor("0001-01-01T00:00:00+23:59", 1, "next"),
    crafted_cursor("9999-12-31T23:59:59-23:59", 1, "next"),
    crafted_cursor("0001-01-01T00:00:00+23:59", 1, "prev"),
    crafted_cursor("9999-12-31T23:59:59-23:59", 1, "prev"),
    crafted_cursor("2024-01-15T10:30:00Z", 10**30, "next"),
    crafted_cursor("2024-01-15T10:30:00Z", -(10**30), "next"),
    crafted_cursor("2024-01-15T10:30:00Z", 2**63, "next"),
    crafted_cursor("2024-01-15T10:30:00Z", True, "next"),
    crafted_cursor("2024-01-15T10:30:00Z", 1.5, "next"),
    crafted_cursor("2024-01-15T10:30:00Z", "1", "next"),
    crafted_cursor("2024-01-15T10:30:00", 1, "next"),
    crafted_cursor(20240115, 1, "next"),
    crafted_cursor(None, None, None),
    crafted_cursor("2024-01-15T10:30:00Z", 1, "sideways"),
    crafted_cursor("2024-01-15T10:30:00Z", 1),
    base64.urlsafe_b64encode(b'{"a": 1, "b": 2, "c": 3}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
    "%%%not-base64%%%",
    "é" * 10,
    "n1.",
    "x1.1",
    "n1.1\n",
    "n" + "9" * 20 + ".1",
]


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/wallet/transactions"])
@pytest.mark.parametrize("cursor", CRAFTED_CURSORS)
def test_crafted_cursors_are_400(shop, product, path, cursor):
    shop.post("/api/v1/orders", order_body(product))
    assert_validation_error(shop.get(path, {"cursor": cursor}), "cursor")


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/wallet/transactions"])
@pytest.mark.parametrize(
    ("cursor", "older_than_all"),
    [
        # Before the calendar starts: nothing is older.
        ("n-9999999999999999999.1", False),
        # After it ends, with an id beyond bigint: everything is older.
        ("n9999999999999999999.9999999999999999999", True),
    ],
)
def test_cursors_beyond_the_calendar_are_positions(shop, product, path, cursor, older_than_all):
    shop.post("/api/v1/orders", order_body(product))
    everything = shop.get(path).json()["results"]
    response = shop.get(path, {"cursor": cursor})
    assert response.status_code == 200
    assert response.json()["results"] == (everything if older_than_all else [])


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/wallet/transactions"])
def test_a_cursor_the_api_returned_still_pages(shop, product, path):
    for n in range(3):
        shop.post("/api/v1/orders", order_body(product, reference_code=f"P-{n}"))
    first = shop.get(path, {"limit": 1}).json()
    second = shop.get(path, {"limit": 1, "cursor": first["next"]})
    assert second.status_code == 200
    assert second.json()["results"][0]["id"] != first["results"][0]["id"]


# --- Request bodies -------------------------------------------------------------


def test_a_3_mb_body_is_413_json(shop, product):
    body = json.dumps({**order_body(product), "padding": "x" * (3 * 1024 * 1024)})
    for path in BODY_ENDPOINTS:
        response = shop.post(path, body)
        assert response.status_code == 413, (path, response.status_code)
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == "payload_too_large"
        assert response.json()["message"]
    assert not Order.objects.exists()


def test_the_body_limit_is_a_setting(shop, product, settings):
    settings.API_MAX_BODY_BYTES = 100
    response = shop.post("/api/v1/orders", order_body(product))
    assert response.status_code == 413
    settings.API_MAX_BODY_BYTES = 10_000
    assert shop.post("/api/v1/orders", order_body(product)).status_code == 201


def test_djangos_own_upload_limit_is_also_413_json(shop, product, settings):
    # A deployment that raises API_MAX_BODY_BYTES above Django's limit.
    settings.API_MAX_BODY_BYTES = 10 * 1024 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({**order_body(product), "padding": "x" * 5000})
    response = shop.post("/api/v1/orders", body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    form = shop.http.post(
        "/api/v1/orders", {"padding": "x" * 5000}, headers=shop.headers
    )  # multipart
    assert form.status_code in {413, 415}
    assert form["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "text/xml",
        "multipart/form-data; boundary=xyz",
        "application/jsonp",
        "",
    ],
)
def test_a_json_body_with_another_content_type_is_415(shop, product, content_type):
    raw = json.dumps(order_body(product))
    token_raw = json.dumps({"api_key": shop.credential.public_key, "api_secret": shop.secret})
    for path, body in [
        ("/api/v1/orders", raw),
        ("/api/v1/charges", raw),
        ("/api/v1/auth/token", token_raw),
    ]:
        response = shop.http.post(path, body, content_type=content_type, headers=shop.headers)
        assert response.status_code == 415, (path, response.status_code, response.content)
        assert response.json()["error"] == "unsupported_media_type"
        assert "application/json" in response.json()["message"]
    assert not Order.objects.exists()
    assert shop.balance() == Decimal("500.00")


def test_a_json_body_without_a_content_type_is_415(shop, product):
    raw = json.dumps(order_body(product)).encode()
    response = shop.http.generic(
        "POST", "/api/v1/orders", raw, content_type=None, headers=shop.headers
    )
    assert response.status_code == 415
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json"]
)
def test_json_content_types_are_accepted(shop, product, content_type):
    raw = json.dumps(order_body(product))
    response = shop.http.post(
        "/api/v1/orders", raw, content_type=content_type, headers=shop.headers
    )
    assert response.status_code == 201


@pytest.mark.parametrize("customer", [["Ada", "ada@example.com"], "Ada", 42, 0, True, False, []])
def test_customer_must_be_an_object(shop, product, customer):
    response = shop.post("/api/v1/orders", order_body(product, customer=customer))
    assert_validation_error(response, "customer")
    assert not Order.objects.exists()


def test_customer_may_be_null_or_left_out(shop, product):
    assert shop.post("/api/v1/orders", order_body(product, customer=None)).status_code == 201
    body = order_body(product, reference_code="NO-CUSTOMER")
    del body["customer"]
    assert shop.post("/api/v1/orders", body).status_code == 201


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_literals_are_malformed_json(shop, product, literal):
    raw = json.dumps(order_body(product)).replace('"quantity": 1', f'"quantity": {literal}')
    response = shop.post("/api/v1/orders", raw)
    assert response.status_code == 400
    assert response.json()["error"] in {"malformed_json", "validation_error"}


# --- Replays compare values, not text -------------------------------------------


@pytest.mark.parametrize(("placed", "replayed"), [("20.00", 20), ("20.00", "20"), (20, "20.0")])
def test_a_replay_with_the_same_amount_written_differently_is_the_same_order(
    shop, placed, replayed
):
    product = ProductFactory(denominations=["10.00", "20.00"])
    first = shop.post("/api/v1/orders", order_body(product, denomination=placed))
    again = shop.post("/api/v1/orders", order_body(product, denomination=replayed))
    assert (first.status_code, again.status_code) == (201, 200), again.content
    assert again.json()["id"] == first.json()["id"]
    assert shop.balance() == Decimal("480.00")


def test_a_replay_with_enums_and_currency_in_another_case_is_the_same_order(shop, product):
    first = shop.post(
        "/api/v1/orders", order_body(product, payment_method="WALLET", wallet_currency="USD")
    )
    again = shop.post(
        "/api/v1/orders", order_body(product, payment_method="wallet", wallet_currency="usd")
    )
    assert (first.status_code, again.status_code) == (201, 200)


def test_a_replay_with_another_amount_is_still_a_conflict(shop, product):
    assert shop.post("/api/v1/orders", order_body(product, denomination="25.00")).status_code == 201
    again = shop.post("/api/v1/orders", order_body(product, denomination="10"))
    assert again.status_code == 409
