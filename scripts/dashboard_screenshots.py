"""Screenshots of the dashboard for docs/screenshots/ (list, revealed voucher, overview).

Run against a server holding demo data (fake codes only), e.g.:
    .venv/bin/python scripts/dashboard_screenshots.py http://127.0.0.1:8103 support PASSWORD
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main(base: str, username: str, password: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=LAUNCH_ARGS)
        scheme = sys.argv[4] if len(sys.argv) > 4 else "light"
        page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/")
        suffix = "" if scheme == "light" else f"-{scheme}"
        page.screenshot(path=OUT / f"overview{suffix}.png", full_page=True)
        page.goto(f"{base}/dashboard/orders/?status=DELIVERED&status=PENDING")
        page.screenshot(path=OUT / f"list{suffix}.png", full_page=False)
        page.locator("tr.order-row a").first.click()
        page.wait_for_selector("details.reveal summary")
        page.locator("details.reveal summary").first.click()
        page.locator(".reveal-form select").first.select_option("not_received")
        page.locator(".reveal-form input[name=note]").first.fill("Ticket #4711")
        page.locator(".reveal-form button[type=submit]").first.click()
        page.wait_for_selector(".voucher-revealed")
        page.wait_for_selector("#order-audit td.mono:has-text('voucher.reveal')")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=OUT / f"detail-revealed{suffix}.png", full_page=True)
        browser.close()
        if errors:
            print("console errors:", *errors, sep="\n  ")


if __name__ == "__main__":
    main(*sys.argv[1:4])
