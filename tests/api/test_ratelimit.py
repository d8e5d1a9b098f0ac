"""Rate limits per credential, counted in Redis so every worker shares them."""

from __future__ import annotations

import math
import os
import time
import uuid

import pytest

from tests.helpers.api import order_body

REDIS_TEST_URL = "redis://127.0.0.1:6379/15"

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def redis_cache(settings):
    """Django's cache on Redis db 15 for one test, flushed before and after.

    Each test gets its own key prefix; under pytest-xdist (tests of several
    workers share db 15) only that prefix is deleted instead of flushing.
    """
    redis = pytest.importorskip("redis")
    server = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        server.ping()
    except redis.exceptions.RedisError as exc:
        if os.environ.get("CI"):
            # CI starts Redis (.ci/run); there a missing server is a failure, not a skip.
            pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}")
    prefix = f"ratelimit-test-{uuid.uuid4().hex[:12]}"
    shared = "PYTEST_XDIST_WORKER" in os.environ

    def clean() -> None:
        if shared:
            for key in server.scan_iter(f"{prefix}:*"):
                server.delete(key)
        else:
            server.flushdb()

    clean()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_TEST_URL,
            "KEY_PREFIX": prefix,
        }
    }
    yield server
    clean()


def _until_refused(call, limit: int) -> list:
    """Call until a 429 (at most two windows' worth), return every response."""
    responses = []
    for _ in range(2 * limit + 2):
        responses.append(call())
        if responses[-1].status_code == 429:
            break
    return responses


def test_burst_limit_refuses_with_retry_after(shop, settings, redis_cache):
    settings.API_RATE_LIMIT_PER_10_SECONDS = 3
    responses = _until_refused(lambda: shop.get("/api/v1/wallet"), 3)
    refused, before = responses[-1], responses[-2]
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 10
    assert refused["X-RateLimit-Remaining"] == "0"
    assert before.status_code == 200
    assert before["X-RateLimit-Limit"] == "3"
    assert before["X-RateLimit-Remaining"] == "0"
    assert redis_cache.keys("*api:rl:*"), "counters must live in Redis"


def test_minute_limit(shop, settings, redis_cache):
    settings.API_RATE_LIMIT_PER_MINUTE = 4
    responses = _until_refused(lambda: shop.get("/api/v1/products"), 4)
    assert responses[-1].status_code == 429
    assert 1 <= int(responses[-1]["Retry-After"]) <= 60
    assert [r["X-RateLimit-Limit"] for r in responses] == ["4"] * len(responses)


def test_limits_are_per_credential(shop, rival, settings, redis_cache):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    _until_refused(lambda: shop.get("/api/v1/wallet"), 2)
    assert shop.get("/api/v1/wallet").status_code == 429
    assert rival.get("/api/v1/wallet").status_code == 200


def test_sixty_reads_per_order_per_hour(shop, product, settings, redis_cache):
    settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR = 2
    first = shop.post("/api/v1/orders", order_body(product, reference_code="R-1")).json()["id"]
    second = shop.post("/api/v1/orders", order_body(product, reference_code="R-2")).json()["id"]
    reads = [shop.get(f"/api/v1/orders/{first}") for _ in range(3)]
    refused_at = time.time()
    assert [r.status_code for r in reads] == [200, 200, 429]
    assert reads[0]["X-RateLimit-Limit"] == "2"
    assert reads[0]["X-RateLimit-Remaining"] == "1"
    # The hourly window is fixed on the hour: the client waits until it restarts.
    until_the_hour = math.ceil(3600 - refused_at % 3600)
    assert abs(int(reads[2]["Retry-After"]) - until_the_hour) <= 2
    assert shop.get(f"/api/v1/orders/{second}").status_code == 200


def test_headers_on_every_authenticated_response_but_not_on_401(shop, rival, product, redis_cache):
    foreign = shop.post("/api/v1/orders", order_body(product)).json()["id"]
    for response in (
        rival.get(f"/api/v1/orders/{foreign}"),
        rival.get("/api/v1/orders", {"limit": 0}),
        rival.post("/api/v1/charges", "{oops"),
        rival.get("/api/v1/products"),
    ):
        assert response.status_code in {200, 400, 404}
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert header in response, (response.status_code, header)
    anonymous = rival.http.get("/api/v1/products")
    assert anonymous.status_code == 401
    assert "X-RateLimit-Limit" not in anonymous


def test_token_requests_count_against_the_credential(shop, settings, redis_cache):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    body = {"api_key": shop.credential.public_key, "api_secret": shop.secret}
    codes = [
        shop.http.post("/api/v1/auth/token", body, content_type="application/json").status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def _bearer(shop) -> dict[str, str]:
    response = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _token_get(shop, headers, path):
    return shop.http.get(path, headers=headers)


def test_a_token_read_counts_once_against_its_order_and_a_refused_one_not_at_all(
    shop, product, settings, redis_cache
):
    settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR = 5
    settings.API_RATE_LIMIT_PER_10_SECONDS = 4
    order_id = shop.post("/api/v1/orders", order_body(product)).json()["id"]
    bearer = _bearer(shop)  # the token call and the POST were the credential's 1st and 2nd
    reads = [_token_get(shop, bearer, f"/api/v1/orders/{order_id}") for _ in range(3)]

    assert [r.status_code for r in reads] == [200, 200, 429]  # the burst window: 4 in 10 s
    # The order's window saw the two reads that got through, each once.
    assert [r["X-RateLimit-Remaining"] for r in reads[:2]] == ["1", "0"]  # burst: 4 - 3, 4 - 4
    (order_key,) = redis_cache.keys(f"*api:rl:c{shop.credential.pk}:o{order_id}:order:*")
    assert int(redis_cache.get(order_key)) == 2


def test_a_token_read_over_the_order_limit_is_refused_until_the_hour(
    shop, product, settings, redis_cache
):
    settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR = 2
    order_id = shop.post("/api/v1/orders", order_body(product)).json()["id"]
    bearer = _bearer(shop)
    reads = [_token_get(shop, bearer, f"/api/v1/orders/{order_id}") for _ in range(3)]
    refused_at = time.time()
    assert [r.status_code for r in reads] == [200, 200, 429]
    assert reads[1]["X-RateLimit-Limit"] == "2"
    assert "2 requests per 3600 s" in reads[2].json()["message"]  # the order's, not the burst
    until_the_hour = math.ceil(3600 - refused_at % 3600)
    assert abs(int(reads[2]["Retry-After"]) - until_the_hour) <= 2
    assert _token_get(shop, bearer, "/api/v1/wallet").status_code == 200


def test_a_revoked_credentials_token_answers_401_even_over_its_limit(
    shop, settings, redis_cache, system_actor
):
    from orders.services.clients import credential_revoke

    settings.API_RATE_LIMIT_PER_10_SECONDS = 2
    bearer = _bearer(shop)
    codes = [_token_get(shop, bearer, "/api/v1/wallet").status_code for _ in range(2)]
    assert codes == [200, 429]
    credential_revoke(credential_id=shop.credential.pk, actor=system_actor)
    refused = _token_get(shop, bearer, "/api/v1/wallet")
    assert refused.status_code == 401
    assert "X-RateLimit-Limit" not in refused


def test_a_credentials_plan_holds_on_redis_for_its_key_and_its_tokens(
    shop, rival, settings, redis_cache, system_actor
):
    from orders.services.clients import credential_rate_limit_set

    settings.API_RATE_LIMIT_PER_MINUTE = 60
    settings.API_RATE_LIMIT_PER_10_SECONDS = 30
    for user in (shop, rival):  # 6 a minute: 3 per 10 s
        credential_rate_limit_set(
            credential_id=user.credential.pk, actor=system_actor, per_minute=6
        )
    bearer = _bearer(rival)  # the token request counts too

    by_key = _until_refused(lambda: shop.get("/api/v1/wallet"), 3)
    by_token = _until_refused(lambda: _token_get(rival, bearer, "/api/v1/wallet"), 3)

    for responses in (by_key, by_token):
        assert responses[-1].status_code == 429
        assert responses[0]["X-RateLimit-Limit"] == "3"
        assert len(responses) <= 7  # at most two windows' worth
