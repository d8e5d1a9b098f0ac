"""The credential cache of the API: a warm call reads no credential from the
database (and writes its "last used" at most once a minute); a credential that
stops being valid is refused within API_CREDENTIAL_CACHE_SECONDS (docs/api.md)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import ApiCredential, Client
from orders.services.clients import credential_issue, credential_revoke
from tests.helpers.api import ApiUser
from tests.helpers.orders import delivered_order
from tests.helpers.tasks import wait_until

pytestmark = pytest.mark.django_db

TTL = 1  # seconds, for the tests that wait for the cache to run out


def _credential_statements(call) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code == 200, response.content
    return [q["sql"] for q in queries.captured_queries if "orders_apicredential" in q["sql"]]


def _bearer(shop: ApiUser) -> dict[str, str]:
    body = {"api_key": shop.credential.public_key, "api_secret": shop.secret}
    token = shop.http.post("/api/v1/auth/token", body, content_type="application/json")
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_a_warm_order_read_reads_and_writes_no_credential(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = 5
    order = delivered_order(shop.client, 3)
    detail = f"/api/v1/orders/{order.pk}"
    assert shop.get(detail).status_code == 200  # cold: reads it, records its use

    assert _credential_statements(lambda: shop.get(detail)) == []
    headers = _bearer(shop)
    assert _credential_statements(lambda: shop.http.get(detail, headers=headers)) == []


def test_the_warm_read_of_a_delivered_order_is_one_query_and_its_audit(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = 5
    order = delivered_order(shop.client, 3)
    detail = f"/api/v1/orders/{order.pk}"
    assert shop.get(detail).status_code == 200

    with CaptureQueriesContext(connection) as queries:
        response = shop.get(detail)
    assert len(response.json()["vouchers"]) == 3
    sql = [q["sql"] for q in queries.captured_queries]
    audit = [s for s in sql if "orders_audit" in s or s.startswith(("SAVEPOINT", "RELEASE"))]
    reads = [s for s in sql if s not in audit]
    assert len(reads) == 1 and reads[0].startswith("SELECT"), reads
    assert "orders_voucher" in reads[0] and "orders_orderitem" in reads[0]
    inserts = [s for s in sql if s.replace('"', "").startswith("INSERT INTO orders_auditevent")]
    assert len(inserts) == 1
    assert not [s for s in sql if s.startswith(("SAVEPOINT", "RELEASE"))]


def _refused_within_the_ttl(shop: ApiUser) -> bool:
    """Waits (a little longer than the TTL at most) until the shop's calls answer 401."""
    try:
        wait_until(
            lambda: shop.get("/api/v1/orders").status_code == 401,
            timeout=TTL + 3,
            what="the credential to be refused",
        )
    except AssertionError:
        return False
    return True


def test_a_deactivated_client_is_refused_within_the_cache_time(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = TTL
    assert shop.get("/api/v1/orders").status_code == 200  # cached now
    # Straight in the table (as the admin's change form saves it): no cache is cleared.
    Client.objects.filter(pk=shop.client.pk).update(is_active=False)
    assert _refused_within_the_ttl(shop)


def test_a_key_revoked_by_another_process_is_refused_within_the_cache_time(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = TTL
    assert shop.get("/api/v1/orders").status_code == 200
    # Another worker's revoke clears its own cache, not this process's one.
    ApiCredential.objects.filter(pk=shop.credential.pk).update(revoked_at=timezone.now())
    assert _refused_within_the_ttl(shop)


def test_a_rotated_key_stops_at_once_and_its_successor_works(shop, settings, system_actor):
    settings.API_CREDENTIAL_CACHE_SECONDS = 60
    assert shop.get("/api/v1/orders").status_code == 200
    headers = _bearer(shop)
    successor = credential_issue(client=shop.client, actor=system_actor)

    credential_revoke(credential_id=shop.credential.pk, actor=system_actor)

    assert shop.get("/api/v1/orders").status_code == 401
    assert shop.http.get("/api/v1/orders", headers=headers).status_code == 401
    fresh = {"X-API-Key": successor.credential.public_key, "X-API-Secret": successor.secret}
    assert shop.http.get("/api/v1/orders", headers=fresh).status_code == 200


def test_last_use_is_written_once_a_minute_whatever_the_cache(shop, settings):
    settings.API_CREDENTIAL_CACHE_SECONDS = 0
    assert shop.get("/api/v1/orders").status_code == 200
    writes = [
        s
        for _ in range(3)
        for s in _credential_statements(lambda: shop.get("/api/v1/orders"))
        if s.startswith("UPDATE")
    ]
    assert writes == []
