"""Refund queue totals: cents, whatever the database sums with."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.enums import OrderStatus, RefundStatus, SubStatus
from orders.rules import summed_cents
from orders.selectors.finance import RefundQueueFilters, refund_queue
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_a_database_sum_is_read_as_cents():
    assert summed_cents(None) == Decimal("0.00")
    assert summed_cents(0.1 + 0.2) == Decimal("0.30")  # SQLite sums decimals as floats
    assert summed_cents(Decimal("12.5")) == Decimal("12.50")


def test_the_queue_total_is_the_exact_sum_of_the_refunds_owed():
    for amount in ("0.10", "0.20", "10.05"):
        OrderFactory(
            status=OrderStatus.FAILED,
            sub_status=SubStatus.NOT_REFUNDED,
            refund_status=RefundStatus.NOT_REFUNDED,
            refund_amount=Decimal(amount),
        )
    OrderFactory(status=OrderStatus.PENDING, refund_status=RefundStatus.NOT_REFUNDED)

    queue = refund_queue(filters=RefundQueueFilters())
    assert [(t.total, t.orders) for t in queue.totals] == [(Decimal("10.35"), 3)]
    assert len(queue.page.items) == 3
