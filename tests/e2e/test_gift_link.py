"""The gift link page in Chromium, as a recipient opens it on a phone: no code
until "Reveal my code", the code (with copy buttons) after it, the order claimed;
the same without JavaScript; a made-up link answers the friendly 404; a PROTECTED
link opens with the code e-mailed to the customer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Browser, Page, expect

from orders.crypto import unseal
from orders.enums import LinkType, SubStatus
from orders.models import Order
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user
from tests.helpers.gift_links import claim_path, claim_tokens, link_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def gift(e2e_settings: Any, system_actor: Any) -> tuple[Order, str, str]:
    """A delivered one-unit LINK order, its token and its code."""
    shop = make_api_user("Gift Shop", system_actor)
    product = ProductFactory(name="Acme Gift Card", brand="Acme")
    order = link_order(shop, product)
    (token,) = claim_tokens(shop.get(f"/api/v1/orders/{order.pk}").json())
    return order, token, unseal(order.items.get().voucher.card_number)


def _reveal_on(page: Page, url: str, code: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Acme Gift Card")).to_be_visible()
    expect(page.get_by_text("25.00")).to_be_visible()
    assert code not in page.content()
    button = page.get_by_role("button", name="Reveal my code")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["width"] >= PHONE["width"] * 0.6  # a thumb-sized target
    button.click()
    expect(page.locator("#gift-code")).to_have_text(code)


def test_a_recipient_reveals_the_code_on_a_phone(page: Page, live_server, gift, problems):
    order, token, code = gift
    page.set_viewport_size(PHONE)

    _reveal_on(page, live_server.url + claim_path(token), code)

    expect(page.locator('[data-copy-target="gift-code"]')).to_be_visible()  # JS shows it
    # Nothing wider than the phone: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert Order.objects.get(pk=order.pk).sub_status == SubStatus.GV_LINK_CLAIMED
    page.reload()
    expect(page.locator("#gift-code")).to_have_text(code)  # they may come back
    problems.assert_none()


def test_the_page_works_without_javascript(browser: Browser, live_server, gift):
    order, token, code = gift
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        _reveal_on(page, live_server.url + claim_path(token), code)
        # The copy buttons are an enhancement: without JavaScript they stay hidden.
        expect(page.locator('[data-copy-target="gift-code"]')).to_be_hidden()
    finally:
        context.close()
    assert Order.objects.get(pk=order.pk).sub_status == SubStatus.GV_LINK_CLAIMED


def test_a_made_up_link_answers_the_friendly_404(page: Page, live_server, e2e_settings, problems):
    page.set_viewport_size(PHONE)
    response = page.goto(live_server.url + claim_path("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3Jh"))
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="This gift link can't be opened")).to_be_visible()
    assert problems.csp_violations == []  # the console reports the 404 itself


def test_a_recipient_opens_a_protected_link_with_the_emailed_code(
    page: Page, live_server, e2e_settings, system_actor, problems
):
    shop = make_api_user("Gift Shop", system_actor)
    product = ProductFactory(name="Acme Gift Card", brand="Acme", link_type=LinkType.PROTECTED)
    order = link_order(shop, product)
    (token,) = claim_tokens(shop.get(f"/api/v1/orders/{order.pk}").json())
    code = unseal(order.items.get().voucher.card_number)
    page.set_viewport_size(PHONE)

    page.goto(live_server.url + claim_path(token))
    expect(page.get_by_role("heading", name="Acme Gift Card")).to_be_visible()
    expect(page.get_by_text("a•••@example.com")).to_be_visible()
    expect(page.get_by_role("button", name="Reveal my code")).to_have_count(0)
    assert mail.outbox == []
    page.get_by_role("button", name="Send me a code").click()

    expect(page.get_by_text("We sent a 6-digit code to")).to_be_visible()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.com"]
    match = re.search(r"\b(\d{6})\b", mail.outbox[0].body)
    assert match is not None
    field = page.get_by_label("Code from the e-mail")
    assert field.get_attribute("inputmode") == "numeric"
    assert field.get_attribute("autocomplete") == "one-time-code"
    field.fill(match.group(1))
    page.get_by_role("button", name="Open my gift").click()

    page.get_by_role("button", name="Reveal my code").click()
    expect(page.locator("#gift-code")).to_have_text(code)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert Order.objects.get(pk=order.pk).sub_status == SubStatus.GV_LINK_CLAIMED
    page.reload()
    expect(page.locator("#gift-code")).to_have_text(code)  # verified in this session
    problems.assert_none()
