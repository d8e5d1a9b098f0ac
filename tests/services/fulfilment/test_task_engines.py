"""The task engine, as the worker and the sweeps use it, on whichever engine the
suite runs (django-tasks-db by default; CI runs the `engines` tests again with
TASKS_BACKEND=django_tasks_rq.RQBackend): tasks run, delayed retries wait until
they are due, a dead worker's task is recovered once, and /readyz counts the queue."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.utils import timezone

from orders import task_engines
from orders.models import Order
from orders.selectors.health import readiness
from orders.services.fulfilment import order_fulfil_task
from orders.services.recovery import maintenance_sweep, tasks_recover
from orders.services.webhooks import webhook_deliver_task
from orders.tasks import enqueue
from tests.factories import stock
from tests.helpers.api import order_body
from tests.helpers.concurrency import at_once
from tests.helpers.net import free_port
from tests.helpers.tasks import (
    ON_RQ,
    run_ready_tasks,
    running_tasks,
    tasks_presumed_dead,
    wait_until,
    waiting_task_args,
)

pytestmark = [pytest.mark.engines, pytest.mark.django_db(transaction=True)]


def test_the_configured_engine_is_the_one_in_use(settings):
    assert task_engines.current().name == settings.TASKS_BACKEND


def test_an_order_with_a_task_of_its_own_is_delivered_by_the_engines_worker(
    buyer, product, settings
):
    settings.FULFILMENT_STOCK_BATCHER = False  # the order gets a task of its own
    stock(product, 1)
    order = buyer.place(product, "ENGINE-1")
    assert waiting_task_args(order_fulfil_task) == [[order.pk]]

    run_ready_tasks()

    assert Order.objects.get(pk=order.pk).status == "DELIVERED"
    assert waiting_task_args(order_fulfil_task) == []


def test_a_retry_waits_on_the_engine_until_it_is_due_then_runs(buyer, product, settings):
    settings.FULFILMENT_STOCK_BATCHER = False
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")  # the vendor times out
    settings.FULFILMENT_RETRY_BASE_SECONDS = 2
    order = buyer.place(product, "ENGINE-RETRY")
    run_ready_tasks()
    order.refresh_from_db()
    assert (order.status, order.sub_status) == ("PENDING", "PENDING_REPROCESS")
    assert waiting_task_args(order_fulfil_task) == [[order.pk]]  # the delayed retry

    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("0")  # the vendor recovers
    run_ready_tasks()  # not due yet: nothing runs
    assert Order.objects.get(pk=order.pk).attempts == 1

    wait_until(
        lambda: Order.objects.get(pk=order.pk).status == "DELIVERED",
        tick=run_ready_tasks,
        timeout=30,
        what="the retry to run once due",
    )
    assert Order.objects.get(pk=order.pk).attempts == 1  # one failed attempt, then the retry
    assert waiting_task_args(order_fulfil_task) == []


def test_readyz_counts_the_tasks_waiting_on_the_engine(settings):
    assert readiness().checks["tasks"]["ready"] == 0
    enqueue(webhook_deliver_task, 1)
    enqueue(webhook_deliver_task, 2)
    later = timezone.now() + timedelta(hours=1)
    enqueue(webhook_deliver_task, 3, run_after=later)  # delayed: not ready yet

    tasks = readiness().checks["tasks"]
    assert (tasks["status"], tasks["engine"], tasks["ready"]) == ("ok", settings.TASKS_BACKEND, 2)
    assert tasks["oldest_ready_age_s"] is not None and tasks["oldest_ready_age_s"] < 60


@pytest.mark.postgres
def test_a_dead_workers_task_is_recovered_once_by_two_sweepers_at_once(
    workers, buyer, product, settings
):
    settings.FULFILMENT_STOCK_BATCHER = False
    order = buyer.place(product, "ENGINE-DEAD")  # no stock: a (slow) vendor call
    worker = workers.start(
        VENDOR_SIM_LATENCY_MS="5000",
        WORKER_SWEEP_SECONDS="3600",
        TASK_LEASE_SECONDS="60",  # its own sweep leaves the task alone
        FULFILMENT_STOCK_BATCHER="0",
    )
    wait_until(lambda: running_tasks() == 1, timeout=60, what="the worker to start the task")
    workers.kill(worker)

    results = at_once(lambda: tasks_recover(lease_seconds=0), 2)  # held past any lease

    assert sorted(results) == [0, 1]
    assert tasks_presumed_dead() == 1
    assert running_tasks() == 0
    assert waiting_task_args(order_fulfil_task) == [[order.pk]]  # enqueued again, once


@pytest.mark.postgres
def test_a_task_a_live_worker_is_running_counts_as_the_orders_task_for_the_sweep(
    workers, buyer, product, settings
):
    # The sweep queues fulfilment again for an order it finds with no live task;
    # one whose task a worker has just taken off the queue has one.
    settings.FULFILMENT_STOCK_BATCHER = False
    order = buyer.place(product, "ENGINE-LIVE")
    workers.start(
        VENDOR_SIM_LATENCY_MS="5000",
        WORKER_SWEEP_SECONDS="3600",
        TASK_LEASE_SECONDS="60",
        FULFILMENT_STOCK_BATCHER="0",
    )
    wait_until(lambda: running_tasks() == 1, timeout=60, what="the worker to start the task")
    live = task_engines.current().queued_first_args(
        [order_fulfil_task.module_path], [order.pk, order.pk + 1], lease_seconds=60
    )
    past_lease = task_engines.current().queued_first_args(
        [order_fulfil_task.module_path], [order.pk], lease_seconds=0
    )

    assert live == {order.pk}
    assert past_lease == set()  # held past the lease: the worker is presumed dead


@pytest.mark.postgres
def test_a_worker_started_again_under_its_id_right_after_a_sigkill_delivers(
    workers, buyer, product, settings
):
    # As a supervisor restarts a killed worker at once, with the same --worker-id.
    settings.FULFILMENT_STOCK_BATCHER = False
    stock(product, 2)
    first = buyer.place(product, "ENGINE-AGAIN-1")
    killed = workers.start(worker_id="host-a", FULFILMENT_STOCK_BATCHER="0")
    wait_until(
        lambda: Order.objects.get(pk=first.pk).status == "DELIVERED",
        timeout=60,
        what="the first worker to deliver",
    )
    workers.kill(killed)

    again = workers.start(worker_id="host-a", FULFILMENT_STOCK_BATCHER="0")
    second = buyer.place(product, "ENGINE-AGAIN-2")

    wait_until(
        lambda: Order.objects.get(pk=second.pk).status == "DELIVERED" or again.poll() is not None,
        timeout=60,
        what="the restarted worker to deliver",
    )
    assert again.poll() is None, workers.logs()[-600:]  # still running
    assert Order.objects.get(pk=second.pk).status == "DELIVERED"


@pytest.mark.skipif(not ON_RQ, reason="on django-tasks-db the task commits with the order")
def test_an_order_placed_while_rqs_redis_is_out_of_reach_is_kept_and_queued_later(
    buyer, product, settings, caplog
):
    settings.FULFILMENT_STOCK_BATCHER = False
    settings.TASK_LEASE_SECONDS = 60
    stock(product, 1)
    queues = settings.RQ_QUEUES
    down = f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=1"
    settings.RQ_QUEUES = {"default": {**queues["default"], "URL": down}}
    http = HttpClient()
    response = http.post(
        "/api/v1/orders",
        data=json.dumps(order_body(product, reference_code="ENGINE-DOWN")),
        content_type="application/json",
        headers=buyer.api_headers(),
    )
    assert response.status_code == 201  # the order and its debit are committed
    order = Order.objects.get(pk=response.json()["id"])
    assert order.status == "PLACED"
    assert any("on_commit" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")

    settings.RQ_QUEUES = queues  # Redis is back
    assert waiting_task_args(order_fulfil_task) == []
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert maintenance_sweep()["orders_recovered"] == 1
    run_ready_tasks()
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"
