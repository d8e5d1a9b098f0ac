"""Every error is JSON `{"error", "message"}`: never HTML, never a stack trace."""

from __future__ import annotations

import pytest
from django.test import override_settings

from orders.models import Order
from tests.factories import ProductFactory
from tests.helpers.api import order_body
from tests.helpers.net import free_port

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "not_found", "message": "No Matching Result Found!"}


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing-here",
        "/api/v1/orders/1/extra",
        "/api/unknown",
        "/api/v1/",
        "/api/v2/orders",
    ],
)
def test_unknown_urls_under_api_are_json_404(shop, debug, path):
    for response in (shop.get(path), shop.post(path, {})):
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json() == NOT_FOUND


def test_wrong_method_is_json_405_with_allow(shop, debug):
    response = shop.http.delete("/api/v1/orders", headers=shop.headers)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    put = shop.http.put("/api/v1/charges", "{}", content_type="application/json")
    assert put.status_code == 405
    assert put.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("raw", ["{bad json", "", "[1, 2]", '"just a string"'])
def test_malformed_or_non_object_bodies_are_400(shop, product, debug, raw):
    response = shop.post("/api/v1/orders", raw)
    body = response.json()
    assert response.status_code == 400
    assert body["error"] in {"malformed_json", "validation_error"}
    assert "Traceback" not in body["message"]


def test_validation_errors_list_every_field(shop):
    response = shop.post("/api/v1/orders", {"quantity": "many"})
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "validation_error"
    fields = {d["field"] for d in body["details"]}
    assert {"product_id", "denomination", "reference_code", "quantity"} <= fields
    assert all(d["message"] for d in body["details"])


def test_unexpected_failure_is_json_500_and_logged(shop, debug, caplog):
    # A product whose stored denominations an admin corrupted: a real bug path.
    broken = ProductFactory(denominations=["not-a-number"])
    response = shop.get(f"/api/v1/products/{broken.pk}")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "Internal error; it has been logged.",
    }
    assert "Traceback" not in response.content.decode()
    assert "Unhandled" in caplog.text


def test_domain_conflict_is_json_409(shop, product):
    shop.post("/api/v1/orders", order_body(product))
    response = shop.post("/api/v1/orders", order_body(product, denomination="10.00"))
    assert response.status_code == 409
    assert set(response.json()) == {"error", "message"}


def test_enum_inputs_are_accepted_in_any_case_and_answered_uppercase(shop, product):
    response = shop.post("/api/v1/orders", order_body(product, payment_method="Wallet"))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "PLACED"
    assert body["delivery_time"] in {"INSTANT", "DELAYED"}
    listed = shop.get("/api/v1/orders", {"status": "Placed"}).json()["results"]
    assert [o["id"] for o in listed] == [body["id"]]


def test_a_cache_out_of_reach_is_a_json_503_the_client_may_retry(shop, product, caplog):
    """Redis down (rate limits and credentials live in the cache): not a 500 nor a
    hang, a 503 with Retry-After, and one log line naming the error's class only."""
    location = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: refused
    caches = {"default": {"BACKEND": "starship.cache.RedisCache", "LOCATION": location}}
    with override_settings(CACHES=caches):
        responses = [shop.get("/api/v1/orders"), shop.post("/api/v1/orders", order_body(product))]
    for response in responses:
        assert response.status_code == 503
        assert response["Content-Type"].startswith("application/json")
        assert response["Retry-After"] == "5"
        assert response.json()["error"] == "service_unavailable"
    assert Order.objects.count() == 0
    lines = [r for r in caplog.records if r.getMessage().startswith("Unavailable (")]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)
    assert not any(location in r.getMessage() for r in caplog.records)
