"""The slow simulated vendor, and simulated outcomes scripted in this process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.enums import OrderStatus, RefundStatus, SubStatus
from orders.models import Order, Vendor
from orders.services.fulfilment import order_cancel, order_fulfil
from orders.vendors.simulated import CRASH, FAIL, SimulatedCrash, scripted

pytestmark = pytest.mark.django_db


def _time_passes(order_id: int) -> None:
    """The next attempt is due and the retry window has closed."""
    now = timezone.now()
    Order.objects.filter(pk=order_id).update(next_attempt_at=now, retry_deadline=now)


def test_the_slow_vendor_keeps_an_order_waiting_until_the_retry_window_closes(
    buyer, product, system_actor
):
    Vendor.objects.filter(pk=product.vendor_id).update(adapter="simulated-slow")
    waiting = buyer.place(product, "SLOW-1", quantity=2)
    cancelled = buyer.place(product, "SLOW-2")

    for order_id in (waiting.pk, cancelled.pk):
        order = order_fulfil(order_id=order_id)
        assert (order.status, order.sub_status) == (
            OrderStatus.PENDING,
            SubStatus.PENDING_REPROCESS,
        )
        assert order.next_attempt_at is not None and order.next_attempt_at > timezone.now()
    assert "still pending" in Order.objects.get(pk=waiting.pk).failure_reason

    # Waiting is not in flight: an agent may cancel it, and it is refunded.
    done = order_cancel(order_id=cancelled.pk, actor=system_actor, reason="Client gave up")
    assert done.status == OrderStatus.CANCELLED
    assert done.refund_status == RefundStatus.REFUNDED
    _time_passes(waiting.pk)
    expired = order_fulfil(order_id=waiting.pk)
    assert (expired.status, expired.refund_status) == (OrderStatus.FAILED, RefundStatus.REFUNDED)
    assert expired.status_changes.filter(to_sub_status=SubStatus.REPROCESS_EXPIRED).exists()


def test_a_script_acts_out_an_outcome_here_and_leaves_sandbox_orders_to_their_own(buyer, product):
    rejected = buyer.place(product, "SCRIPTED-1")
    sandbox = buyer.place(product, "SANDBOX-DELAYED-1", sandbox=True)
    plain = buyer.place(product, "PLAIN-1")

    with scripted(FAIL):
        assert order_fulfil(order_id=rejected.pk).status == OrderStatus.FAILED
        assert order_fulfil(order_id=sandbox.pk).status == OrderStatus.DELIVERED
    assert order_fulfil(order_id=plain.pk).status == OrderStatus.DELIVERED
    assert rejected.status_changes.filter(to_sub_status=SubStatus.VENDOR_ORDER_FAILED).exists()
    with pytest.raises(ValueError, match="cannot script 'RETRY'"), scripted("RETRY"):
        pass


def test_a_scripted_crash_leaves_the_order_as_a_killed_worker_does_and_a_new_run_resumes_it(
    buyer, product, settings
):
    order = buyer.place(product, "CRASH-1")

    with scripted(CRASH), pytest.raises(SimulatedCrash):
        order_fulfil(order_id=order.pk)

    order.refresh_from_db()
    assert (order.status, order.sub_status) == (OrderStatus.PENDING, SubStatus.VENDOR_ORDER_PENDING)
    lease = timedelta(seconds=settings.TASK_LEASE_SECONDS)
    assert order.leased_until is not None
    assert order.leased_until > timezone.now() + lease - timedelta(minutes=1)
    assert order_fulfil(order_id=order.pk).status == OrderStatus.PENDING  # the lease holds
    Order.objects.filter(pk=order.pk).update(leased_until=timezone.now())
    assert order_fulfil(order_id=order.pk).status == OrderStatus.DELIVERED
