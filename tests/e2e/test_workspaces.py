"""The finance and inventory workspaces in a real browser: a refund approved from the queue
shows in the client's wallet; a CSV with a bad row is refused, the fixed one imported."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from orders.dashboard.templatetags.dashboard import money
from orders.enums import ImportBatchStatus, RefundStatus, WalletEntryKind
from orders.models import ImportBatch, Order, Wallet, WalletEntry
from tests.factories import ProductFactory, UserFactory, VoucherFactory, refundable_order
from tests.helpers.browser import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADER = "card_number,pin_code,voucher_reference_number,claim_url,expires_at,denomination\n"
NEXT_YEAR = (timezone.now() + timedelta(days=365)).date().isoformat()


@pytest.fixture
def workspace(roles, e2e_settings):
    e2e_settings.REFUND_SECOND_APPROVAL_LIMIT = Decimal("500.00")
    UserFactory(username="fin-finance", role="finance")
    UserFactory(username="ivy-inventory", role="inventory")


def _wallet_of(order: Order) -> Wallet:
    return Wallet.objects.get(client=order.client, currency=order.wallet_currency)


def test_finance_approves_a_refund_and_sees_it_in_the_wallet(
    page: Page, live_server, workspace, problems
):
    base = live_server.url
    target = refundable_order(amount="25.00")
    other = refundable_order(amount="40.00")
    assert target.refund_amount < Decimal("500.00")
    wallet = _wallet_of(target)
    before = wallet.balance

    sign_in(page, base, "fin-finance")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Refunds").click()
    expect(page.get_by_role("heading", name="Refunds awaiting a decision")).to_be_visible()
    expect(page.locator(f"#refund-row-{target.pk}")).to_be_visible()
    expect(page.locator(f"#refund-row-{other.pk}")).to_be_visible()

    page.get_by_label(f"Select order {target.pk}").check()
    page.get_by_label("Decision", exact=True).select_option("APPROVE")
    page.get_by_label("Note", exact=True).fill("vendor failed, ticket 812")
    page.get_by_role("button", name="Apply decision").click()

    results = page.locator("#refund-results")
    expect(results.locator(".message-success")).to_have_text(
        f"Order {target.pk}: refunded {target.refund_amount} {target.wallet_currency}",
        timeout=10_000,
    )
    expect(page.locator(f"#refund-row-{target.pk}")).to_have_count(0)
    expect(page.locator(f"#refund-row-{other.pk}")).to_be_visible()
    target.refresh_from_db()
    assert target.refund_status == RefundStatus.REFUNDED
    Order.objects.get(pk=other.pk, refund_status=RefundStatus.NOT_REFUNDED)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Wallets").click()
    expect(page.get_by_role("heading", name="Wallets")).to_be_visible()
    page.get_by_role("link", name=target.client.name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/dashboard/finance/wallets/{wallet.pk}/$"))
    expected = before + target.refund_amount
    expect(page.locator(".wallet-summary .kpi-value")).to_have_text(
        money(expected, wallet.currency)
    )
    entry = WalletEntry.objects.filter(wallet=wallet).latest("created_at", "id")
    assert entry.kind == WalletEntryKind.REFUND and entry.order_id == target.pk
    top = page.locator("table.ledger tbody tr").first
    expect(top).to_have_attribute("id", f"entry-{entry.pk}")
    expect(top.locator("td").nth(1)).to_have_text("Refund")
    expect(top.locator("td").nth(2)).to_have_text(money(target.refund_amount, wallet.currency))
    expect(top.locator("td").nth(3)).to_have_text(money(expected, wallet.currency))
    expect(top.get_by_role("link", name=f"#{target.pk}")).to_be_visible()
    problems.assert_none()


def test_inventory_refused_csv_then_fixed_csv_imports_and_stock_grows(
    page: Page, live_server, workspace, tmp_path, problems
):
    base = live_server.url
    product: Any = ProductFactory(name="Comet Music", low_stock_threshold=5)
    batch = ImportBatch.objects.create(
        product=product,
        file_name="first.csv",
        file_sha256="0" * 64,
        status=ImportBatchStatus.IMPORTED,
        row_count=1,
        imported_count=1,
    )
    VoucherFactory(product=product, batch=batch, denomination=Decimal("25.00"))
    good = [
        f"5105105105105100,1234,,,{NEXT_YEAR},25",
        f"4000000000000002,9999,,,{NEXT_YEAR},25",
    ]
    bad_csv = tmp_path / "codes-bad.csv"
    bad_csv.write_text(HEADER + "\n".join([*good, "4000000000000010,4321,,,,33"]) + "\n")
    fixed_csv = tmp_path / "codes.csv"
    fixed_csv.write_text(HEADER + "\n".join([*good, "4000000000000010,4321,,,,25"]) + "\n")

    sign_in(page, base, "ivy-inventory")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inventory").click()
    expect(page.get_by_role("heading", name="Inventory", exact=True)).to_be_visible()
    row = page.locator(f"#stock-{product.pk}-2500")
    expect(row).to_be_visible()
    available = int(row.get_attribute("data-available") or "")
    assert available == 1

    page.get_by_role("navigation", name="Inventory").get_by_role("link", name="Import CSV").click()
    expect(page.get_by_role("heading", name="Import vouchers")).to_be_visible()
    page.get_by_label("Product").select_option(str(product.pk))
    page.get_by_label("CSV file").set_input_files(bad_csv)
    page.get_by_role("button", name="Check file").click()

    expect(page.get_by_role("heading", name="Rows with errors")).to_be_visible()
    errors = page.locator("table.import-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first.locator("td").first).to_have_text("4")
    expect(errors.first.locator("td").nth(1)).to_contain_text("denomination")
    expect(page.get_by_text("Nothing will be imported.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Import"))).to_have_count(0)
    assert "5105105105105100" not in page.content()

    page.get_by_role("link", name="Upload a corrected file").click()
    expect(page.get_by_role("heading", name="Import vouchers")).to_be_visible()
    page.get_by_label("Product").select_option(str(product.pk))
    page.get_by_label("CSV file").set_input_files(fixed_csv)
    page.get_by_role("button", name="Check file").click()

    expect(page.get_by_role("status")).to_have_text("Ready to import 3 vouchers into Comet Music.")
    expect(page.locator("table.import-errors")).to_have_count(0)
    page.get_by_role("button", name="Import 3 vouchers").click()

    expect(page).to_have_url(re.compile(r"/dashboard/inventory/$"))
    expect(page.get_by_role("status")).to_contain_text("Imported 3 vouchers into Comet Music")
    row = page.locator(f"#stock-{product.pk}-2500")
    expect(row).to_have_attribute("data-available", str(available + 3))
    expect(row.locator("td").nth(2)).to_have_text(str(available + 3))
    assert "5105105105105100" not in page.content()
    problems.assert_none()


def test_a_large_top_up_waits_for_a_second_finance_user(
    page: Page, live_server, workspace, e2e_settings, problems
):
    e2e_settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT = Decimal("1000.00")
    UserFactory(username="fin-checker", role="finance")
    wallet = _wallet_of(refundable_order(amount="25.00"))
    before = wallet.balance
    base = live_server.url

    sign_in(page, base, "fin-finance", next_path=f"finance/wallets/{wallet.pk}/")
    page.get_by_label("Top-up amount").fill("1e400")
    page.get_by_label("Reason", exact=True).first.fill("goodwill")
    page.get_by_role("button", name="Top up").click()
    expect(page.locator("#top-up-amount-error")).to_have_text(
        "The amount is too large: at most 999999999999.99."
    )
    page.get_by_label("Top-up amount").fill("5000.00")
    page.get_by_role("button", name="Top up").click()
    expect(page.locator("#wallet-body .message-info")).to_contain_text(
        "waiting for a second approver"
    )
    expect(page.locator("#wallet-body table.credits tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)  # not for the maker
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, base, "fin-checker")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Credits").click()
    expect(page.get_by_role("heading", name="Credits awaiting a second approver")).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#credit-results .message-success")).to_contain_text(
        "top-up of 5000.00 USD approved", timeout=10_000
    )
    expect(page.locator("#credit-results table.credits tbody tr")).to_have_text(
        "Nothing is waiting for a second approver."
    )
    wallet.refresh_from_db()
    assert wallet.balance == before + Decimal("5000.00")
    # The refused 1e400 answered 400 on purpose (the form with its error); Chromium
    # logs every 4xx response as a console error.
    problems.console_errors.remove(
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    )
    problems.assert_none()
