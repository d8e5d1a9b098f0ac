"""The gift link page over HTTP: the gift first, the code only after the POST,
private headers, a friendly 404/410, and no token in any log line."""

from __future__ import annotations

import logging

import pytest
from django.test import Client as HttpClient

from orders.crypto import unseal
from orders.enums import GiftLinkStatus, SubStatus
from orders.models import AuditEvent, GiftLink, Order
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user
from tests.helpers.gift_links import claim_path, claim_tokens, link_order

pytestmark = pytest.mark.django_db

MADE_UP = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3Jh"  # 32 characters of the token alphabet


@pytest.fixture
def shop(system_actor):
    return make_api_user("Gift Shop", system_actor)


@pytest.fixture
def gift(shop):
    """A delivered one-unit LINK order and its token."""
    product = ProductFactory(name="Acme Gift Card", brand="Acme")
    order = link_order(shop, product)
    (token,) = claim_tokens(shop.get(f"/api/v1/orders/{order.pk}").json())
    return order, token


def _code(order: Order) -> str:
    return unseal(order.items.get().voucher.card_number)


def _assert_private(response) -> None:
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response["X-Robots-Tag"]
    assert '<meta name="robots" content="noindex, nofollow">' in response.content.decode()


def test_the_page_shows_the_gift_and_no_code_until_the_recipient_reveals_it(gift):
    order, token = gift
    browser = HttpClient(enforce_csrf_checks=True)

    page = browser.get(claim_path(token))
    html = page.content.decode()
    assert page.status_code == 200
    _assert_private(page)
    assert "Acme Gift Card" in html and "25.00" in html and "Reveal my code" in html
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html
    assert _code(order) not in html
    assert GiftLink.objects.get(order=order).status == GiftLinkStatus.UNCLAIMED

    csrf = browser.cookies["csrftoken"].value
    revealed = browser.post(claim_path(token), {"csrfmiddlewaretoken": csrf})
    assert revealed.status_code == 200
    _assert_private(revealed)
    assert _code(order) in revealed.content.decode()
    assert Order.objects.get(pk=order.pk).sub_status == SubStatus.GV_LINK_CLAIMED

    # Back on the page later: the code again, audited again.
    back = HttpClient().get(claim_path(token), HTTP_USER_AGENT="Phone/2.0")
    assert _code(order) in back.content.decode()
    view = AuditEvent.objects.get(action="gift_link.view")
    assert (view.actor_label, view.user_agent) == ("link-recipient", "Phone/2.0")


def test_the_reveal_needs_the_csrf_token(gift):
    order, token = gift
    refused = HttpClient(enforce_csrf_checks=True).post(claim_path(token))
    assert refused.status_code == 403
    assert GiftLink.objects.get(order=order).status == GiftLinkStatus.UNCLAIMED


def test_the_null_origin_of_a_no_referrer_form_still_needs_the_csrf_token(gift):
    order, token = gift
    browser = HttpClient(enforce_csrf_checks=True)
    browser.get(claim_path(token))
    csrf = browser.cookies["csrftoken"].value

    forged = browser.post(claim_path(token), HTTP_ORIGIN="null")
    assert forged.status_code == 403
    assert GiftLink.objects.get(order=order).status == GiftLinkStatus.UNCLAIMED
    posted = browser.post(claim_path(token), {"csrfmiddlewaretoken": csrf}, HTTP_ORIGIN="null")
    assert posted.status_code == 200
    assert GiftLink.objects.get(order=order).status == GiftLinkStatus.CLAIMED


def test_a_head_request_never_reveals_a_claimed_code(gift):
    _order, token = gift
    HttpClient().post(claim_path(token))
    views = AuditEvent.objects.filter(action__startswith="gift_link.v").count()

    assert HttpClient().head(claim_path(token)).status_code == 200
    assert AuditEvent.objects.filter(action__startswith="gift_link.v").count() == views


@pytest.mark.parametrize("path", [f"/gift/{MADE_UP}/", "/gift/", "/gift/short", "/gift/a/b/c"])
def test_a_made_up_link_answers_a_friendly_404_that_reveals_nothing(path):
    response = HttpClient().get(path)
    assert response.status_code == 404
    _assert_private(response)
    assert "This gift link can't be opened" in response.content.decode()


@pytest.mark.parametrize("status", [GiftLinkStatus.REVOKED, GiftLinkStatus.EXPIRED])
def test_a_revoked_or_expired_link_answers_410_with_the_same_page(gift, status):
    order, token = gift
    GiftLink.objects.filter(order=order).update(status=status)

    for response in (HttpClient().get(claim_path(token)), HttpClient().post(claim_path(token))):
        assert response.status_code == 410
        html = response.content.decode()
        assert "This gift link can't be opened" in html
        assert "Acme" not in html and _code(order) not in html


def test_no_log_line_carries_a_token_real_or_made_up(gift, caplog):
    order, token = gift
    caplog.set_level(logging.DEBUG)
    strict = HttpClient(enforce_csrf_checks=True)

    strict.get(claim_path(token))
    strict.post(claim_path(token))  # no CSRF token: 403, logged by django.security.csrf
    HttpClient().post(claim_path(token))  # the claim
    HttpClient().get(claim_path(MADE_UP))  # 404
    GiftLink.objects.filter(order=order).update(status=GiftLinkStatus.REVOKED)
    HttpClient().get(claim_path(token))  # 410

    lines = [record.getMessage() for record in caplog.records]
    assert any("/gift/[redacted]" in line for line in lines), lines
    assert any(r.name == "django.security.csrf" for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert token not in text, record.name
        assert MADE_UP not in text, record.name
