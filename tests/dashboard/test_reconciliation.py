"""The finance reconciliation page: ledger sums per UTC day and currency, the
delivered-or-refunded check with its flag, the ledger check, and who may see it."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

import pytest
from django.db import connection
from django.urls import reverse

from orders.enums import OrderStatus, SubStatus
from orders.models import Order, Product, Wallet
from orders.selectors.reconciliation import ReconRow, reconciliation
from orders.services.actors import Actor
from orders.services.clients import client_create
from orders.services.placing import Customer, order_create
from orders.services.refunds import refund_approve
from orders.services.transitions import order_transition
from tests.factories import ProductFactory, refundable_order
from tests.helpers.rollups import refreshed

pytestmark = pytest.mark.django_db

URL = "/dashboard/finance/reconciliation/"
HX = {"HTTP_HX_REQUEST": "true"}


def _delivered_order(client, amount: str) -> Order:
    system = Actor.system("test")
    product = cast(Product, ProductFactory(currency="USD", denominations=[amount]))
    order = order_create(
        client=client,
        actor=system,
        product_id=product.pk,
        denomination=amount,
        quantity=1,
        reference_code="RECON-DELIVERED",
        customer=Customer(name="Ada", email="ada@example.com"),
    ).order
    order_transition(
        order_id=order.pk, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING, actor=system
    )
    return order_transition(
        order_id=order.pk,
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
        actor=system,
    )


@pytest.fixture
def day():
    """One client, one day: a delivered order (10.00), a failed order refunded
    (25.00) and a failed order whose refund (40.00) awaits finance."""
    client, _wallet, _issued = client_create(
        name="Recon Client", currency="USD", balance="1000.00", actor=Actor.system("test")
    )
    delivered = _delivered_order(client, "10.00")
    refunded = refundable_order(amount="25.00", client=client)
    refund_approve(order_id=refunded.pk, actor=Actor.system("test"))
    awaiting = refundable_order(amount="40.00", client=client)
    return delivered, refunded, awaiting


def _only_row() -> ReconRow:
    rows = reconciliation(days=30)
    assert len(rows) == 1
    return rows[0]


def test_the_day_figures_and_the_awaiting_refund_flag(day):
    row = _only_row()
    assert row.currency == "USD"
    assert row.debits == Decimal("75.00")
    assert row.refunds == Decimal("25.00")
    assert row.top_ups == Decimal("1000.00") and row.adjustments == Decimal("0.00")
    assert row.terminal_debits == Decimal("75.00")
    assert row.terminal_refunds == Decimal("25.00")
    assert row.delivered_value == Decimal("10.00")
    assert row.difference == Decimal("40.00")
    assert row.awaiting_refund == 1 and row.open_orders == 0
    assert row.flagged


def test_the_flag_goes_once_the_refund_is_paid(day):
    _delivered, _refunded, awaiting = day
    refund_approve(order_id=awaiting.pk, actor=Actor.system("test"))
    row = _only_row()
    assert row.refunds == Decimal("65.00")
    assert row.difference == Decimal("0.00")
    assert row.awaiting_refund == 0
    assert not row.flagged


def test_nothing_is_flagged_without_an_awaiting_refund():
    client, _wallet, _issued = client_create(
        name="Calm Client", currency="USD", balance="100.00", actor=Actor.system("test")
    )
    _delivered_order(client, "10.00")
    row = _only_row()
    assert row.difference == Decimal("0.00") and not row.flagged


@pytest.mark.parametrize("source", ["raw rows", "rollups"])
def test_the_page_shows_the_figures_and_the_flag(as_role, day, source):
    if source == "rollups":
        refreshed()
    html = as_role("finance").get(URL).content.decode()
    assert ("Figures as of" in html) is (source == "rollups")
    assert "Ledger OK: 1 wallet" in html
    assert "1 order awaiting refund" in html
    assert "Difference</span>" in html
    assert "40.00" in html and "75.00" in html


@pytest.mark.parametrize("source", ["raw rows", "rollups"])
def test_a_hand_broken_balance_shows_the_ledger_mismatch(as_role, day, source):
    wallet = Wallet.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_wallet SET balance = %s WHERE id = %s", ["1.00", wallet.pk])
    if source == "rollups":
        refreshed()  # the next sweep copies every balance
    html = as_role("finance").get(URL).content.decode()
    assert "Ledger OK" not in html
    assert "Ledger mismatch" in html and "Recon Client · USD" in html


@pytest.mark.parametrize("days", ["0", "366", "abc", "-3"])
def test_bad_days_is_a_form_error(as_role, days):
    response = as_role("finance").get(URL, {"days": days})
    assert response.status_code == 400
    assert "The period could not be used" in response.content.decode()


def test_days_narrows_the_period(as_role, day):
    response = as_role("finance").get(URL, {"days": "1"})
    assert response.status_code == 200
    assert "last 1 day," in response.content.decode()


ROLE_STATUS = [("support", 403), ("finance", 200), ("inventory", 403), ("admin", 200)]


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(("role", "status"), ROLE_STATUS)
def test_role_matrix(as_role, role, status, htmx):
    response = as_role(role).get(URL, **(HX if htmx else {}))
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert 'id="recon-results"' in html
        assert ("<html" in html) is not htmx


@pytest.mark.parametrize("htmx", [False, True])
def test_anonymous_is_sent_to_login(as_role, htmx):
    response = as_role(None).get(URL, **(HX if htmx else {}))
    if htmx:
        assert response.status_code == 204 and "/accounts/login/" in response["HX-Redirect"]
    else:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_url_name_and_navigation(as_role):
    assert reverse("dashboard:reconciliation") == URL
    finance = as_role("finance").get(reverse("dashboard:overview")).content.decode()
    support = as_role("support").get(reverse("dashboard:overview")).content.decode()
    assert URL in finance and ">Reconciliation<" in finance
    assert URL not in support
