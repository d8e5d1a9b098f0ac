"""Stock batches under real workers (`manage.py run_worker` subprocesses): a worker
SIGKILLed inside a batch leaves nothing allocated and nothing stuck, and two
workers competing for a 10,000-unit order and its neighbours hand out each
voucher once."""

from __future__ import annotations

import pytest

from orders.models import Order, OrderItem, StatusChange, Voucher
from orders.services.fulfilment import order_fulfil_task
from tests.factories import stock
from tests.helpers.fulfilment import (
    assert_each_voucher_once,
    assert_nothing_lost_or_doubled,
    big_order,
    bulk_stock,
)
from tests.helpers.tasks import all_terminal, running_tasks, tasks_presumed_dead, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.engines, pytest.mark.django_db(transaction=True)]


def a_batch_is_held(owner_db) -> bool:
    """Whether a worker's connection sits in a transaction it has held for over a
    second (the stock batch, kept open by FULFILMENT_BATCH_HOLD_SECONDS). Read
    from pg_stat_activity, which locks nothing: a probe that locked the vouchers
    to count them would make the batch skip them and send its orders to the vendor."""
    row = owner_db.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND state = 'idle in transaction' AND state_change < now() - interval '1 second'"
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("batcher", [True, False], ids=["stock-batcher", "task-per-order"])
def test_a_worker_killed_inside_a_batch_allocates_nothing_twice_and_strands_nothing(
    workers, buyer, product, settings, batcher, owner_db
):
    settings.FULFILMENT_STOCK_BATCHER = batcher  # placing: no task, or a task each
    flag = "1" if batcher else "0"
    stock(product, 20)
    orders = [buyer.place(product, f"KILLBATCH-{n}", quantity=2) for n in range(10)]
    ids = [o.pk for o in orders]

    # The batch waits before it commits: the kill lands inside it, every time.
    first = workers.start(
        FULFILMENT_BATCH_HOLD_SECONDS="60",
        FULFILMENT_BATCH_SIZE="50",
        FULFILMENT_STOCK_BATCHER=flag,
    )
    wait_until(lambda: a_batch_is_held(owner_db), timeout=60, what="a batch held open")
    workers.kill(first)

    if not batcher:
        assert running_tasks() >= 1  # killed mid-task
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"PLACED"}
    assert Voucher.objects.filter(status="AVAILABLE").count() == 20  # the batch rolled back
    assert not OrderItem.objects.filter(order_id__in=ids).exclude(voucher=None).exists()

    # The next worker's batcher takes the orders at once; a dead task waits for
    # its lease (2 s) to run out, then recovery runs it again.
    workers.start(FULFILMENT_BATCH_SIZE="3", FULFILMENT_STOCK_BATCHER=flag)
    wait_until(lambda: all_terminal(ids), timeout=90, what="every order to finish")
    wait_until(
        lambda: running_tasks() == 0, timeout=30, what="the dead worker's task to be recovered"
    )

    if not batcher:
        assert tasks_presumed_dead() >= 1
    assert set(Order.objects.filter(pk__in=ids).values_list("sub_status", flat=True)) == {
        "INVENTORY_FULFILLED"
    }
    starts = StatusChange.objects.filter(order_id__in=ids, from_status="PLACED")
    assert sorted(starts.values_list("order_id", flat=True)) == sorted(ids)  # one start each
    assert_nothing_lost_or_doubled(buyer, ids)


def test_two_workers_allocate_a_10000_unit_order_and_its_rivals_each_voucher_once(
    workers, buyer, product
):
    bulk_stock(product, 10_000 + 24)
    huge = big_order(buyer, product, 10_000, "HUGE-RACE")
    rivals = [buyer.place(product, f"RIVAL-{n}", quantity=2) for n in range(12)]
    short = buyer.place(product, "RIVAL-SHORT", quantity=3)  # stock runs out: the vendor
    ids = [huge.pk, short.pk, *(o.pk for o in rivals)]
    order_fulfil_task.enqueue(huge.pk)

    workers.start(FULFILMENT_BATCH_SIZE="4")
    workers.start(FULFILMENT_BATCH_SIZE="4")
    wait_until(lambda: all_terminal(ids), timeout=180, what="every order to finish")

    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"DELIVERED"}
    assert huge.items.filter(status="DELIVERED").exclude(voucher=None).count() == 10_000
    assert_each_voucher_once(ids)
    from_stock = OrderItem.objects.filter(order_id__in=ids, vendor_ref="", status="DELIVERED")
    assert from_stock.count() == Voucher.objects.filter(source="IMPORT", status="DELIVERED").count()
    assert Voucher.objects.filter(status="AVAILABLE").count() == 10_024 - from_stock.count()
