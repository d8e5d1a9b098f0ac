"""Scopes: each operation needs one scope of the credential (or of its token); an
order read without vouchers:read lists the vouchers without their secrets."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from prometheus_client import REGISTRY

from orders.api.api import api
from orders.api.auth import JWT_AUDIENCE, JWT_ISSUER, _signing_key
from orders.crypto import unseal
from orders.enums import ALL_API_SCOPES, ApiScope
from orders.models import AuditEvent, Order, Product, Voucher, WebhookDelivery
from orders.selectors.orders import DETAIL_CHUNK
from orders.services.actors import Actor
from orders.services.clients import credential_access_set
from orders.services.webhooks import webhook_endpoint_create, webhook_test_send
from tests.factories import OrderFactory, add_stock, deliver_order
from tests.helpers.api import ApiUser, make_api_user, order_body
from tests.helpers.orders import card_numbers, delivered_order

pytestmark = pytest.mark.django_db

SECRET_FIELDS = ("card_number", "pin_code", "claim_url", "voucher_reference_number")


def _everything_but(scope: str) -> list[str]:
    return [s for s in ALL_API_SCOPES if s != scope]


def _order_of(user: ApiUser, product: Product) -> str:
    return str(OrderFactory(client=user.client, product=product).pk)


def _hook_of(user: ApiUser) -> int:
    endpoint, _ = webhook_endpoint_create(
        client=user.client,
        url="https://hooks.example.com/x",
        events=["order.delivered"],
        actor=Actor.system("scope-test"),
    )
    return endpoint.pk


def _failed_delivery_of(user: ApiUser) -> str:
    """An endpoint of the user and a FAILED delivery of it: `<endpoint>/deliveries/<id>`."""
    endpoint_id = _hook_of(user)
    delivery = webhook_test_send(
        client_id=user.client.pk, endpoint_id=endpoint_id, actor=Actor.system("scope-test")
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="FAILED")
    return f"{endpoint_id}/deliveries/{delivery.pk}"


# Every operation of /api/v1 that needs a scope: (operationId, method, call, scope).
Call = Callable[[ApiUser, Product], Any]
ENDPOINTS: list[tuple[str, str, Call, str]] = [
    (
        "product_list",
        "GET",
        lambda user, product: user.get("/api/v1/products"),
        ApiScope.ORDERS_READ,
    ),
    (
        "product_detail",
        "GET",
        lambda user, product: user.get(f"/api/v1/products/{product.pk}"),
        ApiScope.ORDERS_READ,
    ),
    (
        "product_availability",
        "GET",
        lambda user, product: user.get(
            f"/api/v1/products/{product.pk}/availability", {"denomination": "25.00"}
        ),
        ApiScope.ORDERS_READ,
    ),
    (
        "charges_calculate",
        "POST",
        lambda user, product: user.post(
            "/api/v1/charges",
            {"product_id": product.pk, "denomination": "25.00", "quantity": 1},
        ),
        ApiScope.ORDERS_READ,
    ),
    (
        "order_create_view",
        "POST",
        lambda user, product: user.post("/api/v1/orders", order_body(product)),
        ApiScope.ORDERS_WRITE,
    ),
    (
        "order_list_view",
        "GET",
        lambda user, product: user.get("/api/v1/orders"),
        ApiScope.ORDERS_READ,
    ),
    (
        "order_detail",
        "GET",
        lambda user, product: user.get(f"/api/v1/orders/{_order_of(user, product)}"),
        ApiScope.ORDERS_READ,
    ),
    (
        "wallet_balances",
        "GET",
        lambda user, product: user.get("/api/v1/wallet"),
        ApiScope.WALLET_READ,
    ),
    (
        "wallet_transactions",
        "GET",
        lambda user, product: user.get("/api/v1/wallet/transactions"),
        ApiScope.WALLET_READ,
    ),
    (
        "webhook_endpoint_list_view",
        "GET",
        lambda user, product: user.get("/api/v1/webhooks"),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_endpoint_create_view",
        "POST",
        lambda user, product: user.post(
            "/api/v1/webhooks", {"url": "https://hooks.example.com/x", "events": ["order.failed"]}
        ),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_endpoint_deactivate_view",
        "DELETE",
        lambda user, product: user.http.delete(
            f"/api/v1/webhooks/{_hook_of(user)}", headers=user.headers
        ),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_secret_rotate_view",
        "POST",
        lambda user, product: user.post(f"/api/v1/webhooks/{_hook_of(user)}/rotate-secret"),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_test_send_view",
        "POST",
        lambda user, product: user.post(f"/api/v1/webhooks/{_hook_of(user)}/test"),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_delivery_list_view",
        "GET",
        lambda user, product: user.get(f"/api/v1/webhooks/{_hook_of(user)}/deliveries"),
        ApiScope.WEBHOOKS_MANAGE,
    ),
    (
        "webhook_delivery_replay_view",
        "POST",
        lambda user, product: user.post(f"/api/v1/webhooks/{_failed_delivery_of(user)}/replay"),
        ApiScope.WEBHOOKS_MANAGE,
    ),
]
IDS = [name for name, *_ in ENDPOINTS]


def _scoped_user(system_actor: Any, scopes: list[str]) -> ApiUser:
    return make_api_user("Scoped Shop", system_actor, scopes=scopes)


def _token(user: ApiUser, **body: Any) -> Any:
    return user.http.post(
        "/api/v1/auth/token",
        {"api_key": user.credential.public_key, "api_secret": user.secret, **body},
        content_type="application/json",
    )


def _bearer(user: ApiUser, token: str, path: str) -> Any:
    return user.http.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("name", "method", "call", "scope"), ENDPOINTS, ids=IDS)
def test_an_operation_outside_the_credentials_scopes_answers_403_naming_the_scope(
    system_actor, product, name, method, call, scope
):
    user = _scoped_user(system_actor, _everything_but(scope))

    response = call(user, product)

    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == "insufficient_scope"
    assert scope in body["message"]


@pytest.mark.parametrize(("name", "method", "call", "scope"), ENDPOINTS, ids=IDS)
def test_the_one_scope_an_operation_needs_is_enough(
    system_actor, product, name, method, call, scope
):
    user = _scoped_user(system_actor, [scope])

    response = call(user, product)

    assert response.status_code in {200, 201, 202, 204}, response.content


def test_the_table_names_every_operation_and_the_openapi_document_says_its_scope():
    schema = api.get_openapi_schema()
    declared = {  # by the view's name: operationId is "orders_api_routers_<module>_<view>"
        re.sub(r"^orders_api_routers_[a-z]+_", "", operation["operationId"]): (
            method.upper(),
            operation.get("x-required-scope"),
            operation,
        )
        for path_item in schema["paths"].values()
        for method, operation in path_item.items()
    }
    expected = {name: scope for name, _, _, scope in ENDPOINTS}
    assert {op: d[1] for op, d in declared.items() if d[1]} == expected
    assert declared["token_create"][1] is None  # the token endpoint needs none
    for name, method, _, scope in ENDPOINTS:
        method_declared, _, operation = declared[name]
        assert method_declared == method
        assert f"`{scope}`" in operation["description"]
        assert 403 in operation["responses"]
    detail = schema["components"]["schemas"]["OrderDetailOut"]["properties"]
    assert "vouchers:read" in detail["vouchers_redacted"]["description"]


def test_a_credential_issued_without_scopes_holds_them_all(shop):
    shop.credential.refresh_from_db()
    assert shop.credential.scopes == list(ALL_API_SCOPES)
    assert shop.credential.allowed_networks == []


# --- vouchers:read -----------------------------------------------------------------


def _delivered(user: ApiUser, product: Product, units: int = 2) -> tuple[int, list[str]]:
    """A delivered order of the user and its vouchers' secrets as stored."""
    placed = user.post("/api/v1/orders", order_body(product, quantity=units))
    assert placed.status_code == 201, placed.content
    order = Order.objects.get(pk=placed.json()["id"])
    vouchers = add_stock(product, "25.00", units)
    deliver_order(order, vouchers)
    secrets = []
    for voucher in Voucher.objects.filter(pk__in=[v.pk for v in vouchers]):
        for field in SECRET_FIELDS:
            sealed = getattr(voucher, field)
            if sealed is not None:
                secrets.append(unseal(sealed))
    return order.pk, secrets


def _api_reads() -> float:
    return REGISTRY.get_sample_value("starship_api_voucher_reads_total") or 0


def test_without_vouchers_read_an_order_lists_its_vouchers_with_no_secret_and_says_so(
    system_actor, product
):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ, ApiScope.ORDERS_WRITE])
    order_id, secrets = _delivered(user, product)
    reads_before = _api_reads()

    response = user.get(f"/api/v1/orders/{order_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DELIVERED"
    assert body["vouchers_redacted"] is True
    assert len(body["vouchers"]) == 2  # delivered, not hidden: one entry per voucher
    for voucher in body["vouchers"]:
        assert {field: voucher[field] for field in SECRET_FIELDS} == dict.fromkeys(SECRET_FIELDS)
        assert voucher["expires_at"].endswith("Z")
    assert secrets and not any(secret.encode() in response.content for secret in secrets)
    # Nothing was decrypted for the client: no read event, no read counted.
    assert not AuditEvent.objects.filter(action="voucher.read_api").exists()
    assert _api_reads() == reads_before


def test_with_vouchers_read_the_same_order_carries_its_codes_and_is_audited(shop, product):
    order_id, secrets = _delivered(shop, product)

    response = shop.get(f"/api/v1/orders/{order_id}")

    body = response.json()
    assert body["vouchers_redacted"] is False
    assert all(voucher["card_number"] for voucher in body["vouchers"])
    assert all(secret.encode() in response.content for secret in secrets)
    assert AuditEvent.objects.filter(action="voucher.read_api", order_id=order_id).count() == 1


def test_an_open_order_read_without_vouchers_read_says_its_secrets_would_be_withheld(
    system_actor, product
):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ, ApiScope.ORDERS_WRITE])
    placed = user.post("/api/v1/orders", order_body(product))

    detail = user.get(f"/api/v1/orders/{placed.json()['id']}").json()

    assert placed.json()["vouchers_redacted"] is True
    assert detail["vouchers"] == [] and detail["vouchers_redacted"] is True


def test_a_large_order_read_without_vouchers_read_streams_every_voucher_without_secrets(
    system_actor,
):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ])
    order = delivered_order(user.client, DETAIL_CHUNK + 7, delivered=DETAIL_CHUNK + 3)

    response = user.get(f"/api/v1/orders/{order.pk}")

    assert response.streaming
    text = b"".join(response.streaming_content)
    body = json.loads(text)
    assert body["vouchers_redacted"] is True
    assert len(body["vouchers"]) == DETAIL_CHUNK + 3
    assert {v["card_number"] for v in body["vouchers"]} == {None}
    assert not any(card.encode() in text for card in card_numbers(order))
    assert not AuditEvent.objects.filter(action="voucher.read_api").exists()


# --- Tokens ------------------------------------------------------------------------


def test_a_token_narrowed_at_issue_cannot_use_the_scopes_it_dropped(shop, product):
    issued = _token(shop, scopes=["orders:read"])

    assert issued.status_code == 200, issued.content
    assert issued.json()["scopes"] == ["orders:read"]
    token = issued.json()["access_token"]
    assert _bearer(shop, token, "/api/v1/orders").status_code == 200
    refused = _bearer(shop, token, "/api/v1/wallet")
    assert refused.status_code == 403
    assert refused.json()["error"] == "insufficient_scope"
    assert "wallet:read" in refused.json()["message"]


def test_a_token_without_vouchers_read_gets_an_order_without_its_codes(shop, product):
    order_id, secrets = _delivered(shop, product)
    token = _token(shop, scopes=["orders:read"]).json()["access_token"]

    response = _bearer(shop, token, f"/api/v1/orders/{order_id}")

    assert response.json()["vouchers_redacted"] is True
    assert not any(secret.encode() in response.content for secret in secrets)
    assert not AuditEvent.objects.filter(action="voucher.read_api").exists()


def test_a_token_cannot_be_wider_than_its_credential(system_actor):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ])

    wider = _token(user, scopes=["orders:read", "wallet:read"])

    assert wider.status_code == 403
    assert wider.json()["error"] == "insufficient_scope"
    assert "wallet:read" in wider.json()["message"]
    unknown = _token(user, scopes=["orders:delete"])
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "validation_error"
    assert "orders:write" in unknown.json()["message"]  # names the valid ones


def test_a_token_carries_every_scope_of_its_credential_by_default(system_actor):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ, ApiScope.WALLET_READ])

    issued = _token(user).json()

    assert issued["scopes"] == ["orders:read", "wallet:read"]
    assert _bearer(user, issued["access_token"], "/api/v1/wallet").status_code == 200


def test_a_scope_taken_from_a_credential_bites_its_live_tokens(shop, system_actor):
    token = _token(shop).json()["access_token"]
    assert _bearer(shop, token, "/api/v1/wallet").status_code == 200

    credential_access_set(
        credential_id=shop.credential.pk, actor=system_actor, scopes=[ApiScope.ORDERS_READ]
    )

    assert _bearer(shop, token, "/api/v1/wallet").status_code == 403
    assert _bearer(shop, token, "/api/v1/orders").status_code == 200


def test_a_token_from_before_scopes_holds_its_credentials_scopes(system_actor):
    user = _scoped_user(system_actor, [ApiScope.ORDERS_READ])
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": str(user.credential.pk),
        "iat": now,
        "exp": now + 60,
    }
    old = jwt.encode(claims, _signing_key(), algorithm="HS256")

    assert _bearer(user, old, "/api/v1/orders").status_code == 200
    assert _bearer(user, old, "/api/v1/wallet").status_code == 403
