"""The clients workspace in a real browser: finance onboards a partner, issues its
credential and sees the secret once (a reload shows none), with no CSP violation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from orders.models import ApiCredential, Client
from tests.factories import UserFactory
from tests.helpers.browser import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_finance_onboards_a_partner_and_sees_its_secret_once(
    page: Page, live_server, roles, e2e_settings, problems
):
    UserFactory(username="fin-finance", role="finance")
    sign_in(page, live_server.url, "fin-finance")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Clients").click()
    expect(page.get_by_role("heading", name="Clients", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).last.fill("Aurora Perks")
    page.get_by_label("Wallet currency").fill("EUR")
    page.get_by_role("button", name="Create client").click()

    expect(page).to_have_url(re.compile(r"/dashboard/clients/\d+/$"), timeout=10_000)
    client = Client.objects.get(name="Aurora Perks")
    assert page.url.endswith(f"/dashboard/clients/{client.pk}/")
    expect(page.get_by_role("heading", name="Aurora Perks")).to_be_visible()
    page.get_by_text("Issue a credential…").click()
    page.get_by_role("button", name="Issue credential").click()

    secret = page.locator("#one-time-secret-value")
    expect(secret).to_be_visible(timeout=10_000)
    credential = ApiCredential.objects.get(client=client)
    shown_once = ApiCredential.hash_secret(secret.inner_text().strip()) == credential.secret_hash
    assert shown_once, "the page shows another secret than the credential's"
    expect(page.locator(f"#credential-{credential.pk}")).to_be_visible()

    page.reload()
    expect(page.get_by_role("heading", name="Aurora Perks")).to_be_visible()
    expect(page.locator("#one-time-secret-value")).to_have_count(0)
    problems.assert_none()
