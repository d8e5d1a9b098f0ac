"""A PROTECTED gift link's page over HTTP: a one-time code e-mailed to the order's
customer (sent only by a POST, rate limited), entered in a numeric field, stored
only as a keyed hash, single use and valid 10 minutes; five wrong codes lock the
link; a verified link stays open in the session for 30 minutes."""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client as HttpClient
from django.utils import timezone

from orders.crypto import gift_link_code_hash, unseal
from orders.enums import GiftLinkStatus, LinkType
from orders.models import AuditEvent, GiftLink, Order
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user
from tests.helpers.gift_links import claim_path, claim_tokens, link_order

pytestmark = pytest.mark.django_db

MASKED = "a•••@example.com"  # ada@example.com, the order's customer (order_body)


@pytest.fixture
def shop(system_actor):
    return make_api_user("Gift Shop", system_actor)


@pytest.fixture
def gift(shop):
    """A delivered one-unit LINK order of a PROTECTED product and its token."""
    product = ProductFactory(name="Acme Gift Card", brand="Acme", link_type=LinkType.PROTECTED)
    order = link_order(shop, product)
    (token,) = claim_tokens(shop.get(f"/api/v1/orders/{order.pk}").json())
    return order, token


def _voucher_code(order: Order) -> str:
    return unseal(order.items.get().voucher.card_number)


def _mailed_code() -> str:
    match = re.search(r"\b(\d{6})\b", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def _send(browser: HttpClient, token: str):
    return browser.post(claim_path(token), {"action": "send"})


def _enter(browser: HttpClient, token: str, code: str):
    return browser.post(claim_path(token), {"action": "verify", "code": code})


def _link(order: Order) -> GiftLink:
    return GiftLink.objects.get(order=order)


def _actions(order: Order) -> list[str]:
    return list(
        AuditEvent.objects.filter(order_id=order.pk, action__startswith="gift_link.")
        .exclude(action="gift_link.read_api")  # the partner's read of the order
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_the_page_asks_for_a_code_and_shows_neither_the_code_nor_a_reveal_button(gift):
    order, token = gift
    browser = HttpClient()

    for response in (browser.get(claim_path(token)), browser.head(claim_path(token))):
        assert response.status_code == 200
        assert response["Referrer-Policy"] == "no-referrer"
    html = browser.get(claim_path(token)).content.decode()
    assert "Acme Gift Card" in html and "25.00" in html
    assert "Send me a code" in html and MASKED in html and 'name="action" value="send"' in html
    assert "Reveal my code" not in html and _voucher_code(order) not in html
    assert mail.outbox == []  # opening (or previewing) the link never sends mail

    # A reveal posted without the code reveals nothing.
    refused = browser.post(claim_path(token))
    assert refused.status_code == 403
    assert _voucher_code(order) not in refused.content.decode()
    assert _link(order).status == GiftLinkStatus.UNCLAIMED


def test_the_code_is_mailed_to_the_customer_entered_then_the_gift_is_revealed(gift, caplog):
    order, token = gift
    caplog.set_level(logging.DEBUG)
    browser = HttpClient(enforce_csrf_checks=True)
    browser.get(claim_path(token))
    csrf = browser.cookies["csrftoken"].value

    sent = browser.post(claim_path(token), {"action": "send", "csrfmiddlewaretoken": csrf})
    html = sent.content.decode()
    assert sent.status_code == 200
    assert f"We sent a 6-digit code to <strong>{MASKED}</strong>" in html
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [order.customer_email]
    code = _mailed_code()
    assert _voucher_code(order) not in mail.outbox[0].body  # the e-mail is no voucher

    # Stored only as its keyed hash, in no table, no log line and no audit event.
    link = _link(order)
    assert link.code_hash == gift_link_code_hash(link.pk, code)
    with connection.cursor() as cursor:
        for table in ("orders_giftlink", "orders_auditevent", "orders_order"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            assert code not in repr(cursor.fetchall()), table
    sent_event = AuditEvent.objects.get(action="gift_link.code_sent")
    assert sent_event.actor_label == "link-recipient" and sent_event.data["to"] == MASKED

    verified = browser.post(
        claim_path(token), {"action": "verify", "code": code, "csrfmiddlewaretoken": csrf}
    )
    assert verified.status_code == 200
    assert "Reveal my code" in verified.content.decode()
    assert _voucher_code(order) not in verified.content.decode()
    assert _link(order).code_hash == ""  # single use

    revealed = browser.post(claim_path(token), {"csrfmiddlewaretoken": csrf})
    assert _voucher_code(order) in revealed.content.decode()
    assert _link(order).status == GiftLinkStatus.CLAIMED
    assert _actions(order) == [
        "gift_link.code_sent",
        "gift_link.code_verified",
        "gift_link.claim",
    ]
    for record in caplog.records:
        assert code not in record.getMessage() + repr(record.__dict__), record.name

    # Within the 30 minutes the same browser sees its code again without a new code.
    assert _voucher_code(order) in browser.get(claim_path(token)).content.decode()
    # Another browser, or this one after the window, needs a new code.
    assert _voucher_code(order) not in HttpClient().get(claim_path(token)).content.decode()
    session = browser.session
    session[f"gift-link-verified:{link.pk}"] = int(timezone.now().timestamp()) - 1
    session.save()
    later = browser.get(claim_path(token)).content.decode()
    assert "Send me a code" in later and _voucher_code(order) not in later
    # The used code does not open it again.
    again = browser.post(
        claim_path(token), {"action": "verify", "code": code, "csrfmiddlewaretoken": csrf}
    )
    assert again.status_code == 400 and _voucher_code(order) not in again.content.decode()


def test_a_code_older_than_ten_minutes_is_refused(gift):
    order, token = gift
    browser = HttpClient()
    _send(browser, token)
    code = _mailed_code()
    GiftLink.objects.filter(order=order).update(
        code_sent_at=timezone.now() - timedelta(minutes=10, seconds=1)
    )

    response = _enter(browser, token, code)
    assert response.status_code == 400
    html = response.content.decode()
    assert "expired" in html and "Reveal my code" not in html
    assert _link(order).failed_attempts == 0  # nothing was guessed


def test_five_wrong_codes_lock_the_link_and_then_even_the_right_code_is_refused(gift):
    order, token = gift
    browser = HttpClient()
    _send(browser, token)
    code = _mailed_code()
    wrong = "000000" if code != "000000" else "111111"

    for attempt in range(1, 5):
        response = _enter(browser, token, wrong)
        assert response.status_code == 400
        assert f"{5 - attempt} tr" in response.content.decode()
        assert _link(order).failed_attempts == attempt
    locked = _enter(browser, token, wrong)
    assert locked.status_code == 423
    assert "This gift link is locked" in locked.content.decode()
    link = _link(order)
    assert (link.locked, link.failed_attempts) == (True, 5)

    for response in (
        _enter(browser, token, code),
        browser.get(claim_path(token)),
        browser.post(claim_path(token)),
        _send(browser, token),
    ):
        assert response.status_code == 423
        html = response.content.decode()
        assert "contact the person who sent you this gift" in html
        assert _voucher_code(order) not in html and "Acme Gift Card" not in html
    assert len(mail.outbox) == 1
    assert _link(order).status == GiftLinkStatus.UNCLAIMED
    actions = _actions(order)
    assert actions.count("gift_link.code_wrong") == 5 and actions.count("gift_link.locked") == 1
    assert "gift_link.code_verified" not in actions


def test_codes_are_resent_at_most_once_a_minute_and_five_times_an_hour(gift):
    order, token = gift
    browser = HttpClient()
    assert _send(browser, token).status_code == 200
    too_soon = _send(browser, token)
    assert too_soon.status_code == 429
    assert "ask for another in" in too_soon.content.decode()
    assert len(mail.outbox) == 1

    for _ in range(4):
        GiftLink.objects.filter(order=order).update(code_sent_at=_ago(seconds=61))
        assert _send(browser, token).status_code == 200
    assert len(mail.outbox) == 5
    GiftLink.objects.filter(order=order).update(code_sent_at=_ago(seconds=61))
    sixth = _send(browser, token)
    assert sixth.status_code == 429
    assert "5 codes in the last hour" in sixth.content.decode()
    assert len(mail.outbox) == 5

    # Only the newest code works.
    codes = [re.search(r"\b(\d{6})\b", m.body).group(1) for m in mail.outbox]  # type: ignore[union-attr]
    if codes[0] != codes[-1]:
        assert _enter(browser, token, codes[0]).status_code == 400
    assert "Reveal my code" in _enter(browser, token, codes[-1]).content.decode()

    # An hour after the first send the count starts again.
    GiftLink.objects.filter(order=order).update(
        code_window_started_at=timezone.now() - timedelta(hours=1, seconds=1),
        code_sent_at=_ago(seconds=61),
    )
    assert _send(HttpClient(), token).status_code == 200
    assert len(mail.outbox) == 6


def _ago(*, seconds: int):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_mail_that_cannot_be_sent_says_so_and_records_nothing_as_sent(gift):
    order, token = gift
    browser = HttpClient()
    with mock.patch(
        "orders.services.gift_links.send_mail", side_effect=smtplib.SMTPServerDisconnected()
    ):
        response = _send(browser, token)
    assert response.status_code == 503
    html = response.content.decode()
    assert "could not send the code" in html and "try again" in html
    assert "We sent a 6-digit code" not in html
    link = _link(order)
    assert (link.code_hash, link.code_sent_at, link.code_sends) == ("", None, 0)
    assert "gift_link.code_sent" not in _actions(order)

    # Trying again at once works: the failure did not count as a send.
    assert _send(browser, token).status_code == 200
    assert len(mail.outbox) == 1
