"""The overview: today's orders, success rate, median delivery, refunds, stock, charts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.dashboard.charts import product_bar_chart
from orders.enums import InventoryStatus, OrderStatus, RefundStatus, SubStatus
from orders.selectors.overview import dashboard_overview
from tests.factories import OrderFactory, ProductFactory, VoucherFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def week():
    now = timezone.now()
    product = ProductFactory(name="Nebula <Books>", low_stock_threshold=5)
    for minutes in (10, 20, 60):  # delivered after 10, 20 and 60 seconds
        OrderFactory(
            product=product,
            status=OrderStatus.DELIVERED,
            sub_status=SubStatus.INVENTORY_FULFILLED,
            placed_at=now - timedelta(hours=2),
            delivered_at=now - timedelta(hours=2) + timedelta(seconds=minutes),
        )
    OrderFactory(
        product=product,
        status=OrderStatus.FAILED,
        sub_status=SubStatus.NOT_REFUNDED,
        placed_at=now - timedelta(days=2),
        refund_status=RefundStatus.NOT_REFUNDED,
        refund_amount=Decimal("25.00"),
    )
    OrderFactory(product=product, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING)
    OrderFactory(product=product, status=OrderStatus.DELIVERED, placed_at=now - timedelta(days=9))
    VoucherFactory.create_batch(2, product=product, denomination=Decimal("25.00"))
    VoucherFactory(product=product, denomination=Decimal("25.00"), status=InventoryStatus.DELIVERED)
    return product


def test_overview_numbers(week):
    stats = dashboard_overview()
    assert stats.delivered_7d == 3 and stats.terminal_7d == 4
    assert stats.success_rate == pytest.approx(0.75)
    assert stats.median_delivery_seconds == pytest.approx(20)
    assert [(r["currency"], r["count"], r["value"]) for r in stats.refund_backlog] == [
        ("USD", 1, Decimal("25.00"))
    ]
    stock = {(r["name"], r["denomination"]): r["available"] for r in stats.low_stock}
    assert stock[("Nebula <Books>", Decimal("25.00"))] == 2
    assert stock[("Nebula <Books>", Decimal("10.00"))] == 0  # listed, never stocked
    today = dict(stats.today_by_status)
    assert today["PENDING"] >= 1


def test_overview_page_renders_escaped_svg_charts(support_client, week):
    response = support_client.get(reverse("dashboard:overview"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "75%" in html
    assert "20 s" in html
    assert "25.00 USD" in html
    assert html.count("<svg") == 2
    assert "Orders per hour by status, last 7 days</title>" in html
    assert "Nebula &lt;Books&gt;" in html and "Nebula <Books>" not in html
    assert "<script" not in html.split("<main", 1)[1]


def test_product_chart_escapes_labels():
    svg = product_bar_chart([('<script>alert("x")</script>', 3)])
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'role="img"' in svg


def test_overview_with_no_data(support_client):
    html = support_client.get(reverse("dashboard:overview")).content.decode()
    assert "No orders in the last 7 days." in html
    assert "nothing waiting" in html


def test_refund_backlog_is_counted_in_the_wallet_currency_refunds_are_paid_in(support_client):
    """A EUR gift card bought from a USD wallet is refunded in USD."""
    OrderFactory(
        currency="EUR",
        wallet_currency="USD",
        status=OrderStatus.CANCELLED,
        sub_status=SubStatus.NOT_REFUNDED,
        refund_status=RefundStatus.NOT_REFUNDED,
        refund_amount=Decimal("27.40"),
    )
    stats = dashboard_overview()
    assert [(r["currency"], r["count"], r["value"]) for r in stats.refund_backlog] == [
        ("USD", 1, Decimal("27.40"))
    ]
    html = support_client.get(reverse("dashboard:overview")).content.decode()
    assert "27.40 USD" in html and "27.40 EUR" not in html
