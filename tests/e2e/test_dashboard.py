"""The support dashboard in a real browser: filter, open, reveal, re-mask, audit; roles."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from orders.crypto import unseal
from orders.enums import OrderStatus
from orders.models import AuditEvent, Order
from tests.e2e.demo_data import make_demo_data
from tests.factories import UserFactory
from tests.helpers.browser import PASSWORD, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(roles, e2e_settings):
    data = make_demo_data(orders=40)
    UserFactory(username="sam-support", role="support")
    UserFactory(username="fin-finance", role="finance")
    return data


def test_support_filters_opens_reveals_sees_remask_and_the_audit(
    page: Page, live_server, demo, problems
):
    base = live_server.url
    sign_in(page, base, "sam-support")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(2)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    page.locator('input[name="status"][value="DELIVERED"]').check()
    # htmx swaps the table and pushes the filters into the URL.
    expect(page).to_have_url(re.compile(r"status=DELIVERED"))
    rows = page.locator("tr.order-row")
    expect(rows.first).to_be_visible()
    expect(page.locator("#order-results [data-status]").first).to_have_attribute(
        "data-status", "DELIVERED"
    )
    statuses = page.locator("#order-results td:nth-child(2) [data-status]")
    for value in statuses.evaluate_all("els => els.map(e => e.dataset.status)"):
        assert value == "DELIVERED"

    target = next(o for o in demo["delivered"] if o.product.name != "Comet Streaming")
    order = Order.objects.get(pk=target.pk)
    page.goto(f"{base}/dashboard/orders/?status=DELIVERED&q={order.reference_code}")
    page.get_by_role("link", name=f"#{order.pk}").click()
    expect(page.get_by_role("heading", name=re.compile(f"Order #{order.pk}"))).to_be_visible()

    voucher = order.items.order_by("position").first().voucher
    card = unseal(voucher.card_number)
    box = page.locator(f"#voucher-{voucher.pk}")
    expect(box).to_contain_text(f"•••• {voucher.card_last4}")
    assert card not in page.content()

    box.get_by_text("Reveal", exact=True).click()
    box.get_by_label("Reason").select_option(label="Customer says code invalid")
    box.get_by_label("Note (optional)").fill("ticket 4711")
    box.get_by_role("button", name="Reveal code").click()
    revealed = page.locator(f"#voucher-{voucher.pk}.voucher-revealed")
    expect(revealed).to_contain_text(card)
    expect(revealed.locator("[data-copy-target]").first).to_be_visible()

    # The re-mask timer (REVEAL_REMASK_SECONDS=3 here) swaps the masked fragment back.
    masked = page.locator(f"#voucher-{voucher.pk}:not(.voucher-revealed)")
    expect(masked).to_be_visible(timeout=15_000)
    expect(masked).to_contain_text(f"•••• {voucher.card_last4}")
    assert card not in page.content()

    audit = page.locator("#order-audit")
    expect(audit).to_contain_text("voucher.reveal")
    expect(audit).to_contain_text("Customer says code invalid: ticket 4711")
    event = AuditEvent.objects.get(action="voucher.reveal")
    assert event.voucher_id == voucher.pk and event.order_id == order.pk
    assert event.ip_address == "127.0.0.1" and "Chrome" in event.user_agent

    page.reload()
    expect(page.locator("#order-audit")).to_contain_text("voucher.reveal")
    problems.assert_none()


def test_finance_sees_no_reveal_button_and_is_refused(page: Page, live_server, demo, problems):
    base = live_server.url
    sign_in(page, base, "fin-finance")
    order = Order.objects.filter(status=OrderStatus.DELIVERED).first()
    voucher = order.items.exclude(voucher=None).first().voucher
    page.goto(f"{base}/dashboard/orders/{order.pk}/")
    expect(page.locator(f"#voucher-{voucher.pk}")).to_contain_text(f"•••• {voucher.card_last4}")
    expect(page.get_by_text("Reveal", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        f"{base}/dashboard/vouchers/{voucher.pk}/reveal/",
        form={"reason": "invalid"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status == 403
    assert "You do not have access" in response.text()
    assert unseal(voucher.card_number) not in response.text()
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()
    problems.assert_none()


def test_session_end_returns_to_the_page_after_sign_in(page: Page, live_server, demo, problems):
    base = live_server.url
    sign_in(page, base, "sam-support", next_path="orders/?status=FAILED")
    expect(page).to_have_url(re.compile(r"/dashboard/orders/\?status=FAILED$"))
    page.context.clear_cookies()  # what an idle timeout leaves behind
    page.goto(f"{base}/dashboard/orders/?status=PENDING")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill("sam-support")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/orders/\?status=PENDING$"))
    problems.assert_none()
