"""Transient vendor errors retry with backoff until the window closes; rejections fail."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Order, Wallet
from orders.services.fulfilment import order_fulfil, retry_delay_seconds
from tests.factories import stock

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


def test_backoff_doubles_from_the_base_and_is_capped(settings):
    settings.FULFILMENT_RETRY_BASE_SECONDS = 5
    assert [retry_delay_seconds(attempts=n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_delay_seconds(attempts=30) == 3600


def test_transient_vendor_error_schedules_a_retry(buyer, product, settings):
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")
    settings.FULFILMENT_RETRY_BASE_SECONDS = 5
    order = buyer.place(product, "FLAKY-1")
    before = timezone.now()

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("PENDING", "PENDING_REPROCESS")
    assert order.attempts == 1 and "timeout" in order.failure_reason
    assert order.next_attempt_at is not None
    assert timedelta(seconds=4) < order.next_attempt_at - before < timedelta(seconds=6)
    # A duplicate run before the retry is due does nothing.
    assert order_fulfil(order_id=order.pk).attempts == 1


def test_the_retry_succeeds_once_the_vendor_recovers(buyer, product, settings):
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")
    settings.FULFILMENT_RETRY_BASE_SECONDS = 0
    order = order_fulfil(order_id=buyer.place(product, "FLAKY-2").pk)
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("0")

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("DELIVERED", "VENDOR_VOUCHER_FETCHED")
    subs = list(order.status_changes.values_list("to_sub_status", flat=True))
    assert "PENDING_REPROCESS" in subs


def test_retry_window_closing_fails_the_order_and_refunds_it(buyer, product, settings):
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")
    settings.FULFILMENT_RETRY_BASE_SECONDS = 10
    order = buyer.place(product, "FLAKY-3")
    order = order_fulfil(order_id=order.pk)
    assert order.sub_status == "PENDING_REPROCESS"
    # Time passes: the retry is due and the window closes in 5 s, before the next 20 s backoff.
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        next_attempt_at=now, retry_deadline=now + timedelta(seconds=5)
    )

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("FAILED", "REFUNDED")
    assert order.status_changes.filter(to_sub_status="REPROCESS_EXPIRED").exists()
    assert order.refund_amount == order.wallet_amount and order.refund_status == "REFUNDED"
    assert set(order.items.values_list("status", flat=True)) == {"FAILED"}
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")


def test_vendor_rejection_fails_the_order_with_a_full_refund(buyer, product, settings):
    settings.VENDOR_SIM_REJECT_RATE = Decimal("1")
    order = order_fulfil(order_id=buyer.place(product, "NOPE-1", quantity=2).pk)

    assert order.status == "FAILED"
    assert order.status_changes.filter(to_sub_status="VENDOR_ORDER_FAILED").exists()
    assert order.sub_status == "REFUNDED" and order.refund_amount == Decimal("50.00")
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")


def test_vendor_rejection_after_partial_inventory_refunds_the_rest(buyer, product, settings):
    settings.VENDOR_SIM_REJECT_RATE = Decimal("1")
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "HALF-1", quantity=3).pk)

    assert (order.status, order.sub_status) == ("PARTIALLY_DELIVERED", "REFUNDED")
    assert sorted(order.items.values_list("status", flat=True)) == ["DELIVERED", "FAILED", "FAILED"]
    assert order.refund_amount == Decimal("50.00")  # 2 of 3 units of 75.00
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("4975.00")
