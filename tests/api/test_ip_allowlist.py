"""IP allowlists: a credential with one answers only to requests from its networks;
X-Forwarded-For counts only when it comes through a trusted proxy."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from orders.models import AuditEvent
from tests.helpers.api import ApiUser, make_api_user, order_body

pytestmark = pytest.mark.django_db

INSIDE, OUTSIDE = "203.0.113.9", "198.51.100.1"


@pytest.fixture
def office(db, system_actor) -> ApiUser:
    return make_api_user(
        "Office Shop", system_actor, allowed_networks=["203.0.113.0/24", "2001:db8::/32"]
    )


def _refusals() -> float:
    return REGISTRY.get_sample_value("starship_api_ip_refusals_total") or 0


def test_a_request_from_an_allowed_network_is_answered(office):
    assert office.get("/api/v1/wallet", REMOTE_ADDR=INSIDE).status_code == 200
    assert office.get("/api/v1/wallet", REMOTE_ADDR="2001:db8:1::7").status_code == 200


def test_a_request_from_elsewhere_is_refused_counted_and_logged(office, caplog):
    before = _refusals()

    with caplog.at_level(logging.WARNING, logger="orders.api"):
        response = office.get("/api/v1/wallet", REMOTE_ADDR=OUTSIDE)

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "ip_not_allowed"
    assert "203.0.113" not in response.content.decode()  # the allowlist is not echoed
    assert _refusals() == before + 1
    logged = [r.getMessage() for r in caplog.records if "allowlist" in r.getMessage()]
    assert logged and str(office.credential.pk) in logged[0]
    assert office.secret not in caplog.text


def test_an_ipv6_address_outside_the_allowlist_is_refused(office):
    response = office.get("/api/v1/wallet", REMOTE_ADDR="2001:db9::1")

    assert response.status_code == 403
    assert response.json()["error"] == "ip_not_allowed"


def test_a_credential_without_an_allowlist_answers_any_address(shop):
    assert shop.get("/api/v1/wallet", REMOTE_ADDR=OUTSIDE).status_code == 200


def test_x_forwarded_for_is_ignored_from_an_untrusted_peer(office, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    response = office.get(
        "/api/v1/wallet", REMOTE_ADDR=OUTSIDE, headers={"X-Forwarded-For": INSIDE}
    )

    assert response.status_code == 403


def test_x_forwarded_for_is_honoured_through_a_trusted_proxy(office, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    through_proxy = office.get(
        "/api/v1/wallet", REMOTE_ADDR="10.1.2.3", headers={"X-Forwarded-For": INSIDE}
    )
    # The client wrote the left entry; the proxy appended the real address.
    forged = office.get(
        "/api/v1/wallet",
        REMOTE_ADDR="10.1.2.3",
        headers={"X-Forwarded-For": f"{INSIDE}, {OUTSIDE}"},
    )

    assert through_proxy.status_code == 200
    assert forged.status_code == 403


def test_a_token_is_neither_issued_nor_used_outside_the_allowlist(office):
    credentials = {"api_key": office.credential.public_key, "api_secret": office.secret}
    outside = office.http.post(
        "/api/v1/auth/token", credentials, content_type="application/json", REMOTE_ADDR=OUTSIDE
    )
    inside = office.http.post(
        "/api/v1/auth/token", credentials, content_type="application/json", REMOTE_ADDR=INSIDE
    )
    token = inside.json()["access_token"]

    used_outside = office.http.get(
        "/api/v1/wallet", headers={"Authorization": f"Bearer {token}"}, REMOTE_ADDR=OUTSIDE
    )

    assert outside.status_code == 403 and outside.json()["error"] == "ip_not_allowed"
    assert used_outside.status_code == 403 and used_outside.json()["error"] == "ip_not_allowed"


def test_the_audit_trail_records_the_address_the_allowlist_checked(office, product, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    placed = office.post(
        "/api/v1/orders",
        order_body(product),
        REMOTE_ADDR="10.1.2.3",
        headers={"X-Forwarded-For": INSIDE},
    )

    assert placed.status_code == 201
    event = AuditEvent.objects.filter(order_id=placed.json()["id"]).first()
    assert event is not None and event.ip_address == INSIDE
