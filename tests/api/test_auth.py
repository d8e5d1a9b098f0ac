"""Authentication: key + secret, Bearer JWT, and one 401 for every failure."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from orders.api.auth import JWT_AUDIENCE, JWT_ISSUER, _signing_key
from orders.models import ApiCredential
from orders.services.clients import credential_revoke
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"error": "unauthorized", "message": "Invalid or expired access token"}


def _token(shop) -> str:
    response = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_key_and_secret_authenticate(shop):
    response = shop.get("/api/v1/wallet")
    assert response.status_code == 200
    assert response.json()["wallets"][0]["balance"] == "500.00"


def test_token_endpoint_issues_a_short_lived_bearer_token(shop, settings):
    settings.API_JWT_TTL_SECONDS = 300
    response = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["expires_at"].endswith("Z")
    claims = jwt.decode(
        body["access_token"], _signing_key(), algorithms=["HS256"], audience=JWT_AUDIENCE
    )
    assert claims["sub"] == str(shop.credential.pk)
    assert claims["exp"] - claims["iat"] == 300

    wallet = shop.http.get(
        "/api/v1/wallet", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert wallet.status_code == 200
    assert wallet.json()["wallets"][0]["currency"] == "USD"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "sk_live_unknown000000", "X-API-Secret": "whatever"},
        {"X-API-Key": "not a key", "X-API-Secret": "x"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["nothing", "unknown-key", "garbled-key", "garbled-token", "basic-auth"],
)
def test_missing_or_unknown_credentials_answer_401(shop, headers):
    response = shop.http.get("/api/v1/orders", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert "X-RateLimit-Limit" not in response


def test_wrong_secret_is_refused_even_with_a_valid_token(shop):
    token = _token(shop)
    response = shop.http.get(
        "/api/v1/orders",
        headers={
            "X-API-Key": shop.credential.public_key,
            "X-API-Secret": "wrong",
            "Authorization": f"Bearer {token}",
        },
    )
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_token_endpoint_refuses_a_bad_secret_and_answers_json_validation_errors(shop):
    bad = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": "nope"},
        content_type="application/json",
    )
    assert bad.status_code == 401
    assert bad.json() == UNAUTHORIZED
    missing = shop.http.post("/api/v1/auth/token", {}, content_type="application/json")
    assert missing.status_code == 400
    assert missing.json()["error"] == "validation_error"
    assert {d["field"] for d in missing.json()["details"]} == {"api_key", "api_secret"}


def test_expired_token_is_refused(shop):
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "sub": str(shop.credential.pk),
            "iat": now - 1000,
            "exp": now - 10,
        },
        _signing_key(),
        algorithm="HS256",
    )
    response = shop.http.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_token_signed_with_another_key_is_refused(shop):
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "sub": str(shop.credential.pk),
            "iat": now,
            "exp": now + 60,
        },
        "not-the-server-key-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    response = shop.http.get("/api/v1/orders", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_revoked_credential_and_its_tokens_are_refused(shop, settings, system_actor):
    settings.API_CREDENTIAL_CACHE_SECONDS = 0
    token = _token(shop)
    assert shop.get("/api/v1/orders").status_code == 200

    credential_revoke(credential_id=shop.credential.pk, actor=system_actor)

    assert shop.get("/api/v1/orders").json() == UNAUTHORIZED
    by_token = shop.http.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 401
    again = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    assert again.status_code == 401


def test_revocation_takes_effect_within_the_credential_cache_time(shop, settings, system_actor):
    settings.API_CREDENTIAL_CACHE_SECONDS = 1
    assert shop.get("/api/v1/orders").status_code == 200  # now cached
    credential_revoke(credential_id=shop.credential.pk, actor=system_actor)
    deadline = time.monotonic() + 5
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = shop.get("/api/v1/orders").status_code
    assert status == 401


def test_inactive_client_is_refused(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = 0
    shop.client.is_active = False
    shop.client.save(update_fields=["is_active"])
    assert shop.get("/api/v1/orders").status_code == 401


def test_last_used_at_is_written_at_most_once_a_minute(shop):
    assert shop.get("/api/v1/orders").status_code == 200
    first = ApiCredential.objects.get(pk=shop.credential.pk).last_used_at
    assert first is not None
    for _ in range(3):
        assert shop.get("/api/v1/orders").status_code == 200
    assert ApiCredential.objects.get(pk=shop.credential.pk).last_used_at == first

    # A minute later (the gate and the stored time both aged) it is written again.
    from django.core.cache import cache

    cache.delete(f"api:cred:used:{shop.credential.pk}")
    ApiCredential.objects.filter(pk=shop.credential.pk).update(
        last_used_at=first - timedelta(minutes=2)
    )
    assert shop.get("/api/v1/orders").status_code == 200
    assert ApiCredential.objects.get(pk=shop.credential.pk).last_used_at > first - timedelta(
        seconds=1
    )


def test_a_staff_session_is_not_api_authentication(shop):
    staff = UserFactory(is_superuser=True)
    shop.http.force_login(staff)
    response = shop.http.get("/api/v1/orders")
    assert response.status_code == 401


def test_posts_need_no_csrf_token(shop, product):
    from django.test import Client as HttpClient

    strict = HttpClient(enforce_csrf_checks=True)
    response = strict.post(
        "/api/v1/charges",
        {"product_id": product.pk, "denomination": "25.00", "quantity": 1},
        content_type="application/json",
        headers=shop.headers,
    )
    assert response.status_code == 200
    assert response.json()["total"] == "25.00"


def test_timestamps_are_utc_rfc3339(shop):
    entry = shop.get("/api/v1/wallet/transactions").json()["results"][0]
    assert entry["created_at"].endswith("Z")
    assert timezone.datetime.fromisoformat(entry["created_at"].replace("Z", "+00:00"))
