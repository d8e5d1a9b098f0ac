"""Browser tests: sign a staff user in through the real login page."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

PASSWORD = "correct-horse-battery"


def sign_in(page: Page, base: str, username: str, next_path: str = "") -> None:
    page.goto(f"{base}/dashboard/{next_path}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
