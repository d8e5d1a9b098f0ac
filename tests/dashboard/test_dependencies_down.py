"""Staff pages while Redis (the cache: sessions, rate limits, the reveal limit) is
out of reach: signed-in pages keep working from the database, and what cannot
work without Redis answers the 503 page, never a 500 or a secret."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orders.models import AuditEvent
from tests.helpers.dashboard import CARD_NUMBER, PIN
from tests.helpers.net import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings):
    """The cache is a Redis that refuses every connection (nothing listens on the port)."""
    working = settings.CACHES
    settings.CACHES = {
        "default": {
            "BACKEND": "starship.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    yield
    settings.CACHES = working  # before the suite's own cache.clear() at teardown


def test_a_signed_in_agent_keeps_working_from_the_database_while_redis_is_down(
    support_client, redis_down
):
    response = support_client.get(reverse("dashboard:order_list"))

    assert response.status_code == 200
    assert response.wsgi_request.user.username == "support-user"  # still signed in


def test_a_reveal_while_redis_is_down_answers_the_503_page_and_reveals_nothing(
    support_client, delivered_order, redis_down
):
    _, voucher = delivered_order
    support_client.raise_request_exception = False

    response = support_client.post(
        reverse("dashboard:voucher_reveal", args=[voucher.pk]),
        {"reason": "not_received"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "Briefly unavailable" in page and "try again in 5 seconds" in page
    assert CARD_NUMBER not in page and PIN not in page
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()
