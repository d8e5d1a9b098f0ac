"""Refunds of the undelivered value: pro rata, exactly once, auto under the limit;
cancellation and admin retry."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connections
from django_tasks_db.models import DBTaskResult

from orders.enums import ItemStatus
from orders.errors import OrderNotCancellable, OrderNotRetryable, RefundNotDue
from orders.models import AuditEvent, Order, Wallet, WalletEntry
from orders.rules import prorata
from orders.services.actors import Actor
from orders.services.fulfilment import order_cancel, order_fulfil, order_fulfil_task, order_retry
from orders.services.refunds import refund_approve, refund_due, refund_schedule
from orders.services.wallets import ledger_mismatches
from tests.factories import stock

FINANCE = Actor.system("finance-test")


@pytest.mark.parametrize(
    ("charged", "undelivered", "quantity", "refund"),
    [
        ("10.00", 3, 3, "10.00"),  # nothing delivered: everything back
        ("10.00", 2, 3, "6.67"),  # 6.666… rounds half-up
        ("10.00", 1, 3, "3.33"),  # 3.333… rounds down
        ("0.05", 1, 2, "0.03"),  # exactly half a cent rounds up
        ("99.99", 0, 4, "0.00"),
        ("24.50", 1, 2, "12.25"),
    ],
)
def test_refund_is_pro_rata_of_the_charge_rounded_half_up_to_the_cent(
    charged, undelivered, quantity, refund
):
    assert prorata(charged=Decimal(charged), undelivered=undelivered, quantity=quantity) == Decimal(
        refund
    )


@pytest.mark.django_db
def test_partial_refund_of_three_units_keeps_the_delivered_share(buyer, product, settings):
    settings.VENDOR_SIM_REJECT_RATE = Decimal("1")
    product.fee_fixed = Decimal("0.01")  # 75.01 charged: the share is not a round number
    product.save()
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "THIRDS-1", quantity=3).pk)

    assert order.wallet_amount == Decimal("75.01")
    assert order.refund_amount == Decimal("50.01")  # 75.01 × 2/3 = 50.0066… → 50.01
    assert refund_due(order=order) == Decimal("50.01")
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00") - Decimal("25.00")


@pytest.mark.django_db
def test_a_refund_over_the_limit_waits_for_finance(buyer, product, settings):
    settings.AUTO_REFUND_LIMIT = Decimal("40.00")
    settings.VENDOR_SIM_REJECT_RATE = Decimal("1")
    order = order_fulfil(order_id=buyer.place(product, "BIG-1", quantity=2).pk)

    assert (order.status, order.refund_status) == ("FAILED", "NOT_REFUNDED")
    assert order.sub_status == "VENDOR_ORDER_FAILED" and order.refund_amount == Decimal("50.00")
    assert not WalletEntry.objects.filter(order=order, kind="REFUND").exists()

    order = refund_approve(order_id=order.pk, actor=FINANCE, note="checked with vendor")
    again = refund_approve(order_id=order.pk, actor=FINANCE)

    assert (order.sub_status, order.refund_status) == ("REFUNDED", "REFUNDED")
    assert again.refund_entry_id == order.refund_entry_id
    assert WalletEntry.objects.filter(order=order, kind="REFUND").count() == 1
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")
    assert AuditEvent.objects.filter(order=order, action="order.refund").count() == 1


@pytest.mark.django_db
def test_nothing_to_approve_on_a_delivered_order(buyer, product):
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "OK-1").pk)
    with pytest.raises(RefundNotDue):
        refund_approve(order_id=order.pk, actor=FINANCE)
    assert refund_schedule(order_id=order.pk, actor=FINANCE).refund_status == "NONE"


@pytest.mark.django_db
def test_cancelling_a_placed_order_refunds_everything(buyer, product):
    order = buyer.place(product, "CANCEL-1", quantity=2)

    order = order_cancel(order_id=order.pk, actor=FINANCE, reason="customer changed their mind")

    assert (order.status, order.sub_status, order.refund_status) == (
        "CANCELLED",
        "REFUNDED",
        "REFUNDED",
    )
    assert set(order.items.values_list("status", flat=True)) == {ItemStatus.CANCELLED}
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")
    assert order_fulfil(order_id=order.pk).status == "CANCELLED"  # a late task does nothing


@pytest.mark.django_db
def test_a_delivered_order_cannot_be_cancelled(buyer, product):
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "CANCEL-2").pk)
    with pytest.raises(OrderNotCancellable, match="can no longer be cancelled"):
        order_cancel(order_id=order.pk, actor=FINANCE, reason="too late")
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"


@pytest.mark.django_db
def test_an_order_being_fulfilled_right_now_cannot_be_cancelled(buyer, product):
    from orders.services.fulfilment import _begin

    order = buyer.place(product, "CANCEL-3")
    _begin(order.pk)  # a worker has started on it and holds the lease
    with pytest.raises(OrderNotCancellable, match="being fulfilled right now"):
        order_cancel(order_id=order.pk, actor=FINANCE, reason="race")


@pytest.mark.django_db(transaction=True)
def test_admin_retry_runs_a_waiting_order_now_and_is_recorded(buyer, product, settings):
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")
    settings.FULFILMENT_RETRY_BASE_SECONDS = 600
    order = buyer.place(product, "STUCK-1")
    DBTaskResult.objects.all().delete()
    order = order_fulfil(order_id=order.pk)
    assert order.sub_status == "PENDING_REPROCESS"
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("0")

    order = order_retry(order_id=order.pk, actor=FINANCE, note="vendor is back")

    due_now = DBTaskResult.objects.ready().filter(task_path=order_fulfil_task.module_path)
    assert due_now.count() == 1  # the scheduled retry in 10 minutes is not ready; this one is
    assert order.status_changes.filter(note__contains="vendor is back").exists()
    assert AuditEvent.objects.filter(order=order, action="order.retry").exists()
    assert order_fulfil(order_id=order.pk).status == "DELIVERED"


@pytest.mark.django_db
def test_retry_is_refused_for_finished_orders(buyer, product):
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "DONE-1").pk)
    with pytest.raises(OrderNotRetryable):
        order_retry(order_id=order.pk, actor=FINANCE)


def _concurrently(n, call):
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run():
        try:
            barrier.wait(timeout=30)
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_approvals_refund_once(buyer, product, settings):
    settings.AUTO_REFUND_LIMIT = Decimal("0.00")
    order = order_cancel(
        order_id=buyer.place(product, "RACE-1", quantity=2).pk, actor=FINANCE, reason="test"
    )
    assert order.refund_status == "NOT_REFUNDED"

    errors = _concurrently(8, lambda: refund_approve(order_id=order.pk, actor=FINANCE))

    assert errors == []
    assert WalletEntry.objects.filter(order=order, kind="REFUND").count() == 1
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")
    assert ledger_mismatches() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_schedules_refund_once(buyer, product, settings):
    settings.AUTO_REFUND_LIMIT = Decimal("0.00")
    order = order_cancel(order_id=buyer.place(product, "RACE-2").pk, actor=FINANCE, reason="test")
    settings.AUTO_REFUND_LIMIT = Decimal("1000.00")
    Order.objects.filter(pk=order.pk).update(refund_status="NONE")  # not yet scheduled

    errors = _concurrently(
        8,
        lambda: (
            refund_schedule(order_id=order.pk, actor=FINANCE),
            refund_approve(order_id=order.pk, actor=FINANCE),
        ),
    )

    assert errors == []
    assert WalletEntry.objects.filter(order=order, kind="REFUND").count() == 1
    assert Order.objects.get(pk=order.pk).refund_status == "REFUNDED"
    assert ledger_mismatches() == []
