"""Real workers (`manage.py run_worker` subprocesses) against the test database:
several at once never process an order twice, and a worker killed with SIGKILL
mid-task loses nothing and doubles nothing once a worker runs again. On both
task engines (CI runs the `engines` tests again on RQ)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Count
from django_tasks_db.models import DBTaskResult

from orders.models import Order, StatusChange
from orders.services.fulfilment import order_fulfil_task
from tests.factories import stock
from tests.helpers.fulfilment import assert_nothing_lost_or_doubled
from tests.helpers.tasks import (
    ON_RQ,
    all_terminal,
    running_tasks,
    tasks_presumed_dead,
    wait_until,
)

pytestmark = [pytest.mark.postgres, pytest.mark.engines, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("batcher", [True, False], ids=["stock-batcher", "task-per-order"])
def test_two_workers_at_once_never_process_one_order_twice(
    workers, buyer, product, settings, batcher
):
    settings.FULFILMENT_STOCK_BATCHER = batcher  # placing: no task, or a task each
    flag = "1" if batcher else "0"
    stock(product, 8)  # 18 units ordered: the vendor sells the rest
    orders = [buyer.place(product, f"PAIR-{n}", quantity=1 + n % 2) for n in range(12)]
    ids = [o.pk for o in orders]

    workers.start(VENDOR_SIM_LATENCY_MS="50", FULFILMENT_STOCK_BATCHER=flag)
    workers.start(VENDOR_SIM_LATENCY_MS="50", FULFILMENT_STOCK_BATCHER=flag)
    wait_until(lambda: all_terminal(ids), timeout=90, what="all orders to finish")

    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"DELIVERED"}
    starts = StatusChange.objects.filter(order_id__in=ids, from_status="PLACED")
    assert sorted(starts.values_list("order_id", flat=True)) == sorted(ids)  # one start each
    if not ON_RQ:  # the task table says who claimed what (RQ keeps no such history)
        _assert_each_task_claimed_once(ids, batcher)
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

    assert running_tasks() >= 1  # the kill landed mid-task
    assert not all_terminal(ids)
    workers.start(VENDOR_SIM_LATENCY_MS="250")
    wait_until(lambda: all_terminal(ids), timeout=90, what="every order to finish")
    wait_until(
        lambda: running_tasks() == 0, timeout=30, what="the dead worker's task to be recovered"
    )

    assert tasks_presumed_dead() >= 1  # found by the sweep, failed, and run again
    assert_nothing_lost_or_doubled(buyer, ids)
    partial = Order.objects.get(reference_code="SANDBOX-PARTIAL-crash")
    assert (partial.status, partial.refund_amount) == ("PARTIALLY_DELIVERED", Decimal("50.00"))


def _assert_each_task_claimed_once(ids: list[int], batcher: bool) -> None:
    runs = DBTaskResult.objects.filter(task_path=order_fulfil_task.module_path)
    claims = [(r.args_kwargs["args"], r.worker_ids, r.status) for r in runs]
    # No task claimed by two workers. (A task the startup sweep queued as a backstop
    # for an order the batcher then delivered may still wait, READY: it would find
    # its order delivered and do nothing.)
    assert all(len(r.worker_ids) <= 1 for r in runs), f"a task was claimed twice: {claims}"
    if not batcher:  # one task per order, each run once
        assert set(runs.values_list("status", flat=True)) == {"SUCCESSFUL"}
        assert runs.count() == len(ids)
        per_order = runs.values("args_kwargs__args__0").annotate(n=Count("id"))
        assert all(row["n"] == 1 for row in per_order)
    else:  # orders the stock could not cover were handed to a task of their own
        assert set(runs.values_list("status", flat=True)) <= {"SUCCESSFUL", "READY"}
        vendor_sold = Order.objects.filter(pk__in=ids).exclude(sub_status="INVENTORY_FULFILLED")
        handed = set(runs.values_list("args_kwargs__args__0", flat=True))
        assert set(vendor_sold.values_list("pk", flat=True)) <= handed
