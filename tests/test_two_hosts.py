"""What two web hosts share through Redis when REDIS_URL is set: the staff
session (a sign-out on one host ends it on the other), the reveal limit and the
API rate limits count across hosts. Two gunicorn masters, production settings,
one Redis; each test its own key prefix."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import Client

from orders.models import Voucher
from tests.factories import UserFactory
from tests.helpers.api import make_api_user
from tests.helpers.orders import delivered_order
from tests.helpers.servers import gunicorn_hosts

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[list[str]]:
    with gunicorn_hosts(
        tmp_path,
        2,
        REDIS_URL=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        CACHE_KEY_PREFIX=f"two-hosts-{uuid.uuid4().hex}",
        REVEAL_RATE_PER_HOUR="2",
        API_RATE_LIMIT_PER_10_SECONDS="3",
    ) as hosts:
        yield hosts


def staff_browser(username: str) -> dict[str, str]:
    """Cookies of a signed-in admin, and a CSRF secret good as the form's token."""
    browser = Client()
    browser.force_login(UserFactory(username=username, role="admin"))
    return {"sessionid": browser.cookies["sessionid"].value, "csrftoken": secrets.token_hex(16)}


def test_a_sign_out_on_one_host_ends_the_session_on_the_other(two_hosts):
    first, second = two_hosts
    cookies = staff_browser("two-hosts-agent")
    with (
        httpx.Client(base_url=first, cookies=cookies) as one,
        httpx.Client(base_url=second, cookies=cookies) as two,
    ):
        assert two.get("/dashboard/orders/").status_code == 200  # signed in on both
        assert one.get("/dashboard/orders/").status_code == 200

        signed_out = one.post(
            "/accounts/logout/", data={"csrfmiddlewaretoken": cookies["csrftoken"]}
        )
        assert signed_out.status_code == 302

        after = two.get("/dashboard/orders/")
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/accounts/login/")


def test_the_reveal_limit_counts_reveals_on_both_hosts(two_hosts, system_actor):
    first, second = two_hosts
    cookies = staff_browser("two-hosts-reveals")
    order = delivered_order(make_api_user("Two Hosts Shop", system_actor).client, 3)
    vouchers = list(Voucher.objects.filter(order_item__order=order).values_list("pk", flat=True))
    form = {"reason": "not_received", "csrfmiddlewaretoken": cookies["csrftoken"]}

    answers = []
    for host, voucher in zip([first, second, first], vouchers, strict=True):
        with httpx.Client(base_url=host, cookies=cookies) as browser:
            reveal = browser.post(f"/dashboard/vouchers/{voucher}/reveal/", data=form)
            answers.append(reveal.status_code)

    assert answers == [200, 200, 429]  # REVEAL_RATE_PER_HOUR=2, wherever they landed


def test_the_api_rate_limit_counts_requests_on_both_hosts(two_hosts, system_actor):
    shop = make_api_user("Two Hosts Partner", system_actor)
    answers = []
    for n in range(4):
        with httpx.Client(base_url=two_hosts[n % 2], headers=shop.headers) as api:
            answers.append(api.get("/api/v1/orders").status_code)

    assert answers == [200, 200, 200, 429]  # API_RATE_LIMIT_PER_10_SECONDS=3 across hosts
