"""Inventory fulfilment in set-based batches: one short transaction delivers
ready orders from stock, its statements do not grow with orders or units,
and an order the stock cannot cover goes on to the vendor as before."""

from __future__ import annotations

import json
import queue
import threading

import pytest
from django.db import connection
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from orders.enums import OrderStatus, SubStatus
from orders.models import AuditEvent, Order, StatusChange, Voucher, WebhookDelivery
from orders.services.actors import Actor
from orders.services.fulfilment import (
    order_fulfil,
    order_fulfil_task,
    orders_deliver_from_stock,
    orders_deliver_ready,
)
from orders.services.webhooks import webhook_endpoint_create
from tests.factories import stock
from tests.helpers.fulfilment import assert_each_voucher_once, big_order, bulk_stock
from tests.helpers.tasks import run_ready_tasks

pytestmark = pytest.mark.django_db

# The inventory path of one order, at most 15 round trips: BEGIN, claim, its
# items, one allocation per product and denomination, vouchers, items,
# timeline (INSERT + UPDATE), the webhook endpoints, their events and the
# payload's unit count (10 here), the audit INSERT, COMMIT, the webhook task.
# Audit statements are counted apart: `audit_records` becomes one INSERT.
ONE_ORDER_STATEMENTS = 10


def _statements(ctx: CaptureQueriesContext, *, audit: bool) -> int:
    """Statements of (or apart from) the audit trail. SAVEPOINTs are left out: the
    test's own transaction turns BEGIN/COMMIT into a SAVEPOINT pair, and the
    audit events add theirs until `audit_records` is one INSERT."""
    sqls = [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    return sum(1 for sql in sqls if ("orders_audit" in sql) == audit)


@pytest.mark.postgres
def test_an_order_in_stock_is_delivered_in_one_short_transaction(buyer, product, system_actor):
    webhook_endpoint_create(
        client=buyer.client,
        url="https://hooks.example.com/in",
        events=["order.delivered"],
        actor=system_actor,
    )
    stock(product, 3)
    order = buyer.place(product, "FAST-1", quantity=3)

    with CaptureQueriesContext(connection) as ctx:
        done = order_fulfil(order_id=order.pk)

    assert (done.status, done.sub_status) == ("DELIVERED", "INVENTORY_FULFILLED")
    assert _statements(ctx, audit=False) <= ONE_ORDER_STATEMENTS
    timeline = StatusChange.objects.filter(order=order).exclude(from_status="").order_by("id")
    assert [(c.to_status, c.to_sub_status) for c in timeline] == [
        ("PENDING", "PROCESSING"),
        ("DELIVERED", "INVENTORY_FULFILLED"),
    ]
    assert WebhookDelivery.objects.filter(order=order, event="order.delivered").count() == 1
    allocate = AuditEvent.objects.get(order_id=order.pk, action="order.allocate")
    assert sorted(allocate.data["voucher_ids"]) == sorted(
        order.items.values_list("voucher_id", flat=True)
    )
    done.refresh_from_db()
    assert (done.leased_until, done.next_attempt_at) == (None, None)
    assert done.delivered_at is not None
    assert_each_voucher_once([order.pk])


@pytest.mark.postgres
@pytest.mark.parametrize("orders", [2, 12])
def test_a_batch_costs_the_same_statements_for_2_or_12_orders(buyer, product, orders):
    stock(product, 2 * orders)
    placed = [buyer.place(product, f"BATCH-{n}", quantity=2) for n in range(orders)]

    with CaptureQueriesContext(connection) as ctx:
        done = orders_deliver_from_stock(order_id=placed[0].pk, limit=50)

    assert sorted(done) == sorted(o.pk for o in placed)
    # One product and denomination: claim, items, allocation, vouchers, items,
    # timeline INSERT and UPDATE, webhook endpoints = 8, whatever the count.
    assert _statements(ctx, audit=False) == 8
    assert set(Order.objects.filter(pk__in=done).values_list("status", flat=True)) == {"DELIVERED"}
    assert_each_voucher_once(list(done))


@pytest.mark.postgres
def test_a_10000_unit_order_in_stock_is_delivered_set_based(buyer, product):
    bulk_stock(product, 10_000)
    order = big_order(buyer, product, 10_000, "HUGE-1")

    with CaptureQueriesContext(connection) as ctx:
        done = order_fulfil(order_id=order.pk)

    assert (done.status, done.sub_status) == ("DELIVERED", "INVENTORY_FULFILLED")
    assert _statements(ctx, audit=False) <= ONE_ORDER_STATEMENTS  # no per-unit statement
    assert order.items.filter(status="DELIVERED").count() == 10_000
    assert StatusChange.objects.filter(order=order).exclude(from_status="").count() == 2
    assert AuditEvent.objects.filter(order_id=order.pk, action="order.allocate").count() == 1
    assert_each_voucher_once([order.pk])


@pytest.mark.django_db(transaction=True)
def test_the_task_delivers_other_ready_orders_and_their_tasks_do_nothing(buyer, product, settings):
    settings.FULFILMENT_STOCK_BATCHER = False  # a task per order, as before the batcher
    stock(product, 6)
    placed = [buyer.place(product, f"TASKS-{n}", quantity=2) for n in range(3)]

    run_ready_tasks()

    assert set(
        Order.objects.filter(pk__in=[o.pk for o in placed]).values_list("status", flat=True)
    ) == {"DELIVERED"}
    starts = StatusChange.objects.filter(order__in=placed, from_status="PLACED")
    assert starts.count() == 3  # each order started once
    runs = DBTaskResult.objects.filter(task_path=order_fulfil_task.module_path)
    assert runs.filter(status="SUCCESSFUL").count() == 3
    assert_each_voucher_once([o.pk for o in placed])


def test_an_order_short_of_stock_takes_what_there_is_and_the_vendor_the_rest(buyer, product):
    stock(product, 3)
    short = buyer.place(product, "SHORT-1", quantity=2)
    fits = buyer.place(product, "FITS-1", quantity=1)
    big = buyer.place(product, "SHORT-2", quantity=4)

    delivered = orders_deliver_from_stock(order_id=short.pk, limit=10)
    assert sorted(delivered) == sorted([short.pk, fits.pk])  # 3 units: 2 + 1; 4 do not fit
    assert Order.objects.get(pk=big.pk).status == "PLACED"  # left for its own run

    done = order_fulfil(order_id=big.pk)
    assert done.status == "DELIVERED" and done.sub_status == "VENDOR_VOUCHER_FETCHED"
    assert done.items.exclude(vendor_ref="").count() == 4
    assert_each_voucher_once([short.pk, fits.pk, big.pk])


def test_a_partly_stocked_order_keeps_its_stock_and_buys_the_rest(buyer, product):
    stock(product, 2)
    order = buyer.place(product, "PART-1", quantity=5)

    done = order_fulfil(order_id=order.pk)

    assert done.status == "DELIVERED"
    from_stock = done.items.filter(vendor_ref="", status="DELIVERED").count()
    assert (from_stock, done.items.exclude(vendor_ref="").count()) == (2, 3)
    assert_each_voucher_once([order.pk])


def test_test_mode_and_running_orders_are_not_taken_by_a_batch(buyer, product):
    stock(product, 5)
    sandbox = buyer.place(product, "SANDBOX-OK-batch", sandbox=True)
    running = buyer.place(product, "RUNNING-1")
    Order.objects.filter(pk=running.pk).update(
        status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING
    )

    assert orders_deliver_from_stock(limit=10) == {}
    assert order_fulfil(order_id=sandbox.pk).status == "DELIVERED"  # the sandbox path


def test_a_batch_without_stock_changes_nothing(buyer, product):
    order = buyer.place(product, "EMPTY-1")
    assert orders_deliver_from_stock(order_id=order.pk, limit=10) == {}
    order.refresh_from_db()
    assert (order.status, order.leased_until) == ("PLACED", None)
    assert Voucher.objects.count() == 0


def test_a_cancelled_order_is_not_delivered_by_a_batch(buyer, product):
    from orders.services.fulfilment import order_cancel

    stock(product, 1)
    order = buyer.place(product, "CANCEL-B")
    order_cancel(order_id=order.pk, actor=Actor.system("support"), reason="changed mind")
    assert orders_deliver_from_stock(limit=10) == {}
    assert Voucher.objects.filter(status="AVAILABLE").count() == 1
    assert Order.objects.get(pk=order.pk).status == "CANCELLED"


# --- The worker's stock batcher ------------------------------------------------


def _tasks_of(order_ids: list[int]) -> list[int]:
    rows = DBTaskResult.objects.filter(task_path=order_fulfil_task.module_path)
    return [row.args_kwargs["args"][0] for row in rows if row.args_kwargs["args"][0] in order_ids]


@pytest.mark.django_db(transaction=True)
def test_the_stock_batcher_delivers_placed_orders_that_have_no_task(buyer, product):
    stock(product, 6)
    placed = [buyer.place(product, f"BATCHER-{n}", quantity=2) for n in range(3)]
    ids = [o.pk for o in placed]
    assert _tasks_of(ids) == []  # placing queued nothing: the batcher takes them

    assert orders_deliver_ready(limit=50) == 3
    assert orders_deliver_ready(limit=50) == 0  # nothing left, nothing done twice

    delivered = Order.objects.filter(pk__in=ids, status="DELIVERED")
    assert set(delivered.values_list("sub_status", flat=True)) == {"INVENTORY_FULFILLED"}
    assert delivered.count() == 3
    starts = StatusChange.objects.filter(order__in=placed, from_status="PLACED")
    assert starts.count() == 3
    assert_each_voucher_once(ids)


@pytest.mark.django_db(transaction=True)
def test_the_batcher_hands_an_order_the_stock_cannot_cover_to_its_own_run_once(buyer, product):
    stock(product, 1)
    fits = buyer.place(product, "HAND-FITS")
    short = buyer.place(product, "HAND-SHORT", quantity=2)

    assert orders_deliver_ready(limit=50) == 2
    assert Order.objects.get(pk=fits.pk).status == "DELIVERED"
    handed = Order.objects.get(pk=short.pk)
    assert (handed.status, handed.next_attempt_at is not None) == ("PLACED", True)
    assert _tasks_of([short.pk]) == [short.pk]  # queued in the batch's commit
    assert orders_deliver_ready(limit=50) == 0  # no batch claims it again
    assert _tasks_of([short.pk]) == [short.pk]

    run_ready_tasks()  # its own run: what stock there is (none left), then the vendor
    done = Order.objects.get(pk=short.pk)
    assert (done.status, done.sub_status) == ("DELIVERED", "VENDOR_VOUCHER_FETCHED")
    assert done.items.exclude(vendor_ref="").count() == 2
    assert StatusChange.objects.filter(order=done, from_status="PLACED").count() == 1
    assert_each_voucher_once([fits.pk, short.pk])


@pytest.mark.django_db(transaction=True)
def test_test_mode_orders_and_the_batcher_off_still_get_a_task(buyer, product, settings):
    stock(product, 5)
    sandbox = buyer.place(product, "SANDBOX-OK-task", sandbox=True)
    settings.FULFILMENT_STOCK_BATCHER = False
    live = buyer.place(product, "BATCHER-OFF")

    assert sorted(_tasks_of([sandbox.pk, live.pk])) == sorted([sandbox.pk, live.pk])
    run_ready_tasks()
    assert Order.objects.get(pk=sandbox.pk).status == "DELIVERED"
    assert Order.objects.get(pk=live.pk).status == "DELIVERED"


@pytest.mark.django_db(transaction=True)
def test_a_test_key_order_placed_through_the_api_gets_a_task_with_its_key_cached(buyer, product):
    """The API reads its credential from the cache: the cached entry must still
    say it is a test key, or its order waits for a batch that never takes it."""
    stock(product, 5)
    http = DjangoClient()
    ids = []
    for n in range(2):  # the first call fills the cache, the second reads it
        response = http.post(
            "/api/v1/orders",
            data=json.dumps(
                {
                    "product_id": product.pk,
                    "denomination": "25.00",
                    "quantity": 1,
                    "reference_code": f"SANDBOX-OK-api-{n}",
                }
            ),
            content_type="application/json",
            headers=buyer.api_headers(sandbox=True),
        )
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])

    assert sorted(_tasks_of(ids)) == sorted(ids)
    run_ready_tasks()
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"DELIVERED"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_placed_order_wakes_a_listening_batcher_at_commit_and_a_rollback_does_not(buyer, product):
    from django.db import transaction

    from orders.tasks import ReadyOrdersListener

    stop = threading.Event()
    outcomes: queue.Queue[bool] = queue.Queue()
    listening = threading.Event()
    go = threading.Semaphore(0)

    def batcher() -> None:
        listener = ReadyOrdersListener(stop)
        try:
            listener.wait(0)  # LISTEN
            listening.set()
            for timeout in (1.0, 60.0):
                go.acquire()
                outcomes.put(listener.wait(timeout))
        finally:
            connection.close()

    thread = threading.Thread(target=batcher, daemon=True)
    thread.start()
    assert listening.wait(30)
    stock(product, 2)

    class RolledBack(Exception):
        pass

    go.release()
    with pytest.raises(RolledBack), transaction.atomic():
        buyer.place(product, "WAKE-ROLLBACK")
        raise RolledBack
    assert outcomes.get(timeout=30) is False  # nothing woke it: its wait ran out

    go.release()
    order = buyer.place(product, "WAKE-COMMIT")
    assert outcomes.get(timeout=90) is True  # woken by the commit
    thread.join(timeout=30)
    assert orders_deliver_ready(limit=50) == 1
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"
    assert not Order.objects.filter(reference_code="WAKE-ROLLBACK").exists()
