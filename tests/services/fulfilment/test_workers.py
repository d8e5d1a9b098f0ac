"""Real workers (`manage.py run_worker` subprocesses) against the test database:
several at once never process an order twice, and a worker killed with SIGKILL
mid-task loses nothing and doubles nothing once a worker runs again."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django_tasks_db.models import DBTaskResult

from orders.models import Order, OrderItem, StatusChange, Voucher, Wallet, WalletEntry
from orders.services.fulfilment import order_fulfil_task
from orders.services.refunds import refund_due
from orders.services.wallets import ledger_mismatches
from tests.factories import stock
from tests.helpers.tasks import all_terminal, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def assert_nothing_lost_or_doubled(buyer, order_ids):
    call_command("check_ledger")  # raises CommandError if a balance != its entries
    assert ledger_mismatches() == []
    linked = list(OrderItem.objects.exclude(voucher=None).values_list("voucher_id", flat=True))
    assert len(linked) == len(set(linked)), "a voucher is on two items"
    delivered = OrderItem.objects.filter(order_id__in=order_ids, status="DELIVERED")
    assert delivered.filter(voucher=None).count() == 0, "a delivered unit has no voucher"
    assert not OrderItem.objects.filter(order_id__in=order_ids, status="PENDING").exists()
    assert Voucher.objects.filter(source="VENDOR", order_item=None).count() == 0
    assert Voucher.objects.filter(status="DELIVERED").count() == delivered.count()
    debits = Counter(
        WalletEntry.objects.filter(kind="ORDER_DEBIT").values_list("order_id", flat=True)
    )
    assert all(debits[pk] == 1 for pk in order_ids), "an order was not debited exactly once"
    refunds = Counter(WalletEntry.objects.filter(kind="REFUND").values_list("order_id", flat=True))
    assert max(refunds.values(), default=0) <= 1, "an order was refunded twice"
    for order in Order.objects.filter(pk__in=order_ids):
        assert order.refund_amount == refund_due(order=order), order.reference_code
        assert refunds[order.pk] == (1 if order.refund_amount > 0 else 0), order.reference_code
    charged = Order.objects.filter(pk__in=order_ids).aggregate(s=Sum("wallet_amount"))["s"]
    refunded = Order.objects.filter(pk__in=order_ids).aggregate(s=Sum("refund_amount"))["s"]
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00") - charged + refunded


def test_two_workers_at_once_never_process_one_order_twice(workers, buyer, product):
    stock(product, 8)
    orders = [buyer.place(product, f"PAIR-{n}", quantity=1 + n % 2) for n in range(12)]
    ids = [o.pk for o in orders]

    workers.start(VENDOR_SIM_LATENCY_MS="50")
    workers.start(VENDOR_SIM_LATENCY_MS="50")
    wait_until(lambda: all_terminal(ids), timeout=90, what="all orders to finish")

    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"DELIVERED"}
    starts = StatusChange.objects.filter(order_id__in=ids, from_status="PLACED")
    assert sorted(starts.values_list("order_id", flat=True)) == sorted(ids)  # one start each
    runs = DBTaskResult.objects.filter(task_path=order_fulfil_task.module_path)
    assert runs.count() == len(ids) and runs.filter(status="SUCCESSFUL").count() == len(ids)
    assert all(len(r.worker_ids) == 1 for r in runs), "a task was claimed by two workers"
    per_order = runs.values("args_kwargs__args__0").annotate(n=Count("id"))
    assert all(row["n"] == 1 for row in per_order)
    assert_nothing_lost_or_doubled(buyer, ids)


def test_a_worker_killed_mid_task_loses_and_doubles_nothing(workers, buyer, product):
    stock(product, 6)
    orders = [buyer.place(product, f"CRASH-{n}", quantity=1 + n % 2) for n in range(9)]
    orders.append(buyer.place(product, "SANDBOX-PARTIAL-crash", quantity=3, sandbox=True))
    orders.append(buyer.place(product, "SANDBOX-RETRY-crash", sandbox=True))
    ids = [o.pk for o in orders]
    in_vendor_call = ("VENDOR_ORDER_PENDING", "VENDOR_ORDER_CREATED")

    first = workers.start(VENDOR_SIM_LATENCY_MS="250")
    wait_until(
        lambda: Order.objects.filter(pk__in=ids, sub_status__in=in_vendor_call).exists(),
        timeout=60,
        what="a vendor call in flight",
    )
    workers.kill(first)

    assert DBTaskResult.objects.filter(status="RUNNING").exists()  # the kill landed mid-task
    assert not all_terminal(ids)
    workers.start(VENDOR_SIM_LATENCY_MS="250")
    wait_until(lambda: all_terminal(ids), timeout=90, what="every order to finish")
    wait_until(
        lambda: not DBTaskResult.objects.filter(status="RUNNING").exists(),
        timeout=30,
        what="the dead worker's task to be recovered",
    )

    recovered = DBTaskResult.objects.filter(
        exception_class_path="orders.services.recovery.TaskLeaseExpired"
    )
    assert recovered.exists()
    assert_nothing_lost_or_doubled(buyer, ids)
    partial = Order.objects.get(reference_code="SANDBOX-PARTIAL-crash")
    assert (partial.status, partial.refund_amount) == ("PARTIALLY_DELIVERED", Decimal("50.00"))
