"""The staff second factor in Chromium: enrolment at first sign-in, a passkey through the
DevTools virtual authenticator, step-up on reveal, and the lockout after wrong codes."""

from __future__ import annotations

import base64
import re
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django_otp.oath import TOTP
from playwright.sync_api import Page, expect

from orders.crypto import unseal
from orders.models import AuditEvent, Order
from tests.e2e.demo_data import make_demo_data
from tests.factories import UserFactory
from tests.helpers.browser import PASSWORD
from tests.helpers.second_factor import app_code, enrol_app, wrong_code

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def required(roles, e2e_settings):
    e2e_settings.STAFF_2FA_REQUIRED = True
    return e2e_settings


def password_step(page: Page, base: str, username: str, path: str = "/dashboard/") -> None:
    page.goto(f"{base}{path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def code_step(page: Page, code: str) -> None:
    expect(page.get_by_role("heading", name="Second step of sign-in")).to_be_visible()
    page.get_by_label(re.compile("Code from your authenticator app")).fill(code)
    page.get_by_role("button", name="Verify").click()


def test_a_new_finance_user_enrols_an_app_at_first_sign_in(
    page: Page, live_server, required, problems
):
    UserFactory(username="fin-first", role="finance")
    base = live_server.url
    password_step(page, base, "fin-first", "/dashboard/finance/refunds/")

    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    # What an authenticator app does with the typed secret: the current six digits.
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    page.get_by_label("Code from the app").fill(f"{totp.token():06d}")
    page.get_by_role("button", name="Turn on").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name=re.compile("I have saved them")).click()
    expect(page.get_by_role("heading", name="Refunds")).to_be_visible()
    assert AuditEvent.objects.filter(action="auth.second_factor_enrolled").count() == 1
    problems.assert_none()


def _virtual_authenticator(page: Page) -> Any:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def test_a_passkey_is_registered_and_then_used_to_sign_in(
    page: Page, live_server, required, problems
):
    user = UserFactory(username="sup-passkey", role="support")
    device = enrol_app(user)
    base = live_server.url
    cdp, authenticator = _virtual_authenticator(page)

    password_step(page, base, "sup-passkey")
    code_step(page, app_code(device))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.goto(f"{base}/accounts/2fa/")
    page.get_by_role("button", name="Add a passkey or security key").click()
    expect(page.locator("#passkey-register-status-message")).to_contain_text(
        re.compile("registered|success", re.I), timeout=15_000
    )
    page.reload()
    expect(page.locator("#passkey-list li")).to_have_count(1)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert len(credentials["credentials"]) == 1

    page.get_by_role("button", name="Sign out").click()
    password_step(page, base, "sup-passkey")
    expect(page.get_by_role("heading", name="Second step of sign-in")).to_be_visible()
    page.get_by_role("button", name="Use a passkey or security key").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=15_000)
    used = AuditEvent.objects.filter(action="auth.second_factor_verified").order_by("pk").last()
    assert used.data["method"] == "passkey" and used.data["purpose"] == "sign_in"
    assert AuditEvent.objects.filter(
        action="auth.second_factor_enrolled", data__method="passkey"
    ).exists()
    problems.assert_none()


def test_a_reveal_after_the_step_up_window_asks_for_the_code_inline(
    page: Page, live_server, required, problems
):
    demo = make_demo_data(orders=12)
    user = UserFactory(username="sup-reveal", role="support")
    device = enrol_app(user)
    base = live_server.url

    password_step(page, base, "sup-reveal")
    code_step(page, app_code(device))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    _age_step_up(page, required.STEP_UP_SECONDS + 1)  # the step-up window has passed

    target = next(o for o in demo["delivered"] if o.product.name != "Comet Streaming")
    order = Order.objects.get(pk=target.pk)
    voucher = order.items.order_by("position").first().voucher
    card = unseal(voucher.card_number)
    page.goto(f"{base}/dashboard/orders/{order.pk}/")
    box = page.locator(f"#voucher-{voucher.pk}")
    box.get_by_text("Reveal", exact=True).click()
    box.get_by_label("Reason").select_option(label="Customer says code invalid")
    box.get_by_role("button", name="Reveal code").click()

    challenge = page.locator(f"#voucher-{voucher.pk}.step-up")
    expect(challenge).to_contain_text("Confirm it's you")
    assert card not in page.content()
    challenge.get_by_label("Code from your authenticator app").fill(app_code(device))
    challenge.get_by_role("button", name="Confirm and continue").click()
    expect(page.locator(f"#voucher-{voucher.pk}.voucher-revealed")).to_contain_text(card)
    event = AuditEvent.objects.get(action="voucher.reveal")
    assert event.reason.startswith("Customer says code invalid")
    problems.assert_none()


def _age_step_up(page: Page, seconds: int) -> None:
    """Move the browser session's last use of the second factor `seconds` back."""
    cookie = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"])
    session["second_factor_at"] -= seconds
    session.save()


def test_five_wrong_codes_lock_the_account(page: Page, live_server, required):
    user = UserFactory(username="fin-locked", role="finance")
    device = enrol_app(user)
    base = live_server.url
    password_step(page, base, "fin-locked")
    for _ in range(4):
        code_step(page, wrong_code(device))
        expect(page.get_by_role("alert")).to_contain_text("not valid")
    code_step(page, wrong_code(device))
    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()

    # The right password (and the right code) no longer get in.
    password_step(page, base, "fin-locked")
    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    assert AuditEvent.objects.filter(action="auth.locked_out").exists()
