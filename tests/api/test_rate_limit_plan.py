"""A credential's rate-limit plan: its own requests per minute instead of the
default, the burst window in proportion, for its key pair and its tokens alike."""

from __future__ import annotations

import pytest

from orders.api.ratelimit import plan_limits
from orders.errors import ValidationFailed
from orders.models import ApiCredential, AuditEvent
from orders.services.clients import credential_rate_limit_set
from tests.helpers.api import ApiUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 60
    settings.API_RATE_LIMIT_PER_10_SECONDS = 30


def _calls_until_refused(call, most: int) -> list[int]:
    answers: list[int] = []
    while len(answers) < most and 429 not in answers:
        answers.append(call().status_code)
    return answers


def test_a_credential_with_a_lower_plan_gets_429_sooner(shop, rival, limits, system_actor):
    credential_rate_limit_set(credential_id=shop.credential.pk, actor=system_actor, per_minute=3)

    # Fixed windows: crossing a minute's boundary lets at most one window more through.
    limited = _calls_until_refused(lambda: shop.get("/api/v1/wallet"), most=8)
    default = [rival.get("/api/v1/wallet").status_code for _ in range(8)]

    assert limited[-1] == 429 and len(limited) <= 7
    assert default == [200] * 8
    refused = shop.get("/api/v1/wallet")
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert refused["X-RateLimit-Limit"] in {"2", "3"}  # the burst (ceil(30 * 3 / 60)) or minute
    assert "Retry-After" in refused


def test_a_token_is_held_to_its_credentials_plan(shop, limits, system_actor):
    credential_rate_limit_set(credential_id=shop.credential.pk, actor=system_actor, per_minute=3)
    token = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    assert token.status_code == 200, token.content
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}

    answers = _calls_until_refused(lambda: shop.http.get("/api/v1/wallet", headers=bearer), most=8)

    assert answers[-1] == 429 and len(answers) <= 7


def test_a_higher_plan_is_not_capped_by_the_default_burst(settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 200
    settings.API_RATE_LIMIT_PER_10_SECONDS = 20

    assert plan_limits(None) == (200, 20)
    assert plan_limits(2000) == (2000, 200)
    assert plan_limits(10) == (10, 1)
    assert plan_limits(1) == (1, 1)


def test_setting_a_plan_is_audited_and_bites_at_once(shop: ApiUser, limits, system_actor):
    assert shop.get("/api/v1/wallet")["X-RateLimit-Limit"] == "30"  # warm: cached credential

    credential_rate_limit_set(credential_id=shop.credential.pk, actor=system_actor, per_minute=6)

    assert shop.get("/api/v1/wallet")["X-RateLimit-Limit"] in {"3", "6"}
    event = AuditEvent.objects.get(action="credential.rate_limit_set")
    assert event.data == {
        "client_id": shop.client.pk,
        "public_key": shop.credential.public_key,
        "previous_per_minute": None,
        "per_minute": 6,
    }


@pytest.mark.parametrize("plan", [0, -1, 100_001])
def test_a_plan_out_of_range_is_refused(shop, system_actor, plan):
    with pytest.raises(ValidationFailed) as refused:
        credential_rate_limit_set(
            credential_id=shop.credential.pk, actor=system_actor, per_minute=plan
        )

    assert refused.value.field == "rate_limit_per_minute"
    assert ApiCredential.objects.get(pk=shop.credential.pk).rate_limit_per_minute is None
    assert not AuditEvent.objects.filter(action="credential.rate_limit_set").exists()
