"""The recovery sweep: dead workers' tasks and stalled orders are resumed, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from orders.models import Order
from orders.services.fulfilment import order_fulfil_task
from orders.services.recovery import (
    maintenance_sweep,
    orders_recover,
    tasks_recover,
    tasks_repath,
)
from tests.factories import stock
from tests.helpers.tasks import lose_waiting_tasks, run_ready_tasks, waiting_task_args

pytestmark = pytest.mark.django_db(transaction=True)


def _fulfil_tasks(status: str) -> int:
    fulfil_tasks = DBTaskResult.objects.filter(task_path=order_fulfil_task.module_path)
    return fulfil_tasks.filter(status=status).count()


def test_a_task_running_past_its_lease_is_failed_and_enqueued_again(buyer, product, settings):
    settings.TASK_LEASE_SECONDS = 60
    settings.FULFILMENT_STOCK_BATCHER = False  # the order gets a task of its own
    stock(product, 1)
    order = buyer.place(product, "LOST-1")
    task = DBTaskResult.objects.get(task_path=order_fulfil_task.module_path)
    task.claim("dead-worker")  # a worker claimed it, then was killed
    DBTaskResult.objects.filter(pk=task.pk).update(
        started_at=timezone.now() - timedelta(seconds=61)
    )

    assert tasks_recover() == 1
    assert tasks_recover() == 0  # once

    task.refresh_from_db()
    assert task.status == TaskResultStatus.FAILED
    assert task.exception_class_path == "orders.services.recovery.TaskLeaseExpired"
    run_ready_tasks()
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"


@pytest.mark.engines
def test_a_placed_order_without_a_task_is_enqueued_again(buyer, product, settings):
    settings.TASK_LEASE_SECONDS = 60
    order = buyer.place(product, "LOST-2")  # left to the stock batcher: no task
    assert orders_recover() == 0  # too recent to call it stalled
    lose_waiting_tasks()  # the task is lost
    assert orders_recover() == 0  # too recent to call it stalled
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(seconds=61))

    assert orders_recover() == 1
    assert orders_recover() == 0  # the new task is queued: no duplicate
    assert waiting_task_args(order_fulfil_task) == [[order.pk]]


@pytest.mark.engines
def test_a_pending_order_whose_lease_ran_out_is_resumed(buyer, product, settings):
    settings.TASK_LEASE_SECONDS = 60
    stock(product, 1)
    order = buyer.place(product, "LOST-3")
    lose_waiting_tasks()
    Order.objects.filter(pk=order.pk).update(
        status="PENDING",
        sub_status="PROCESSING",
        next_attempt_at=timezone.now() - timedelta(seconds=settings.WORKER_SWEEP_SECONDS + 1),
    )

    counts = maintenance_sweep()
    run_ready_tasks()

    assert counts["orders_recovered"] == 1
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"


@pytest.mark.engines
def test_recover_orders_command_reports_its_work(buyer, product, capsys):
    call_command("recover_orders", "--lease-seconds=3600")
    assert "recovered 0 task(s), re-enqueued 0 order(s)" in capsys.readouterr().out


def test_a_task_queued_under_its_path_of_an_earlier_release_still_runs(buyer, product, settings):
    settings.FULFILMENT_STOCK_BATCHER = False  # the order gets a task of its own
    stock(product, 1)
    order = buyer.place(product, "MOVED-1")
    DBTaskResult.objects.update(task_path="orders.tasks.order_fulfil")  # the old path

    assert tasks_repath() == 1
    assert tasks_repath() == 0
    run_ready_tasks()

    assert Order.objects.get(pk=order.pk).status == "DELIVERED"
    assert _fulfil_tasks(TaskResultStatus.SUCCESSFUL) == 1


def test_a_dead_task_of_an_earlier_release_is_enqueued_under_its_new_path(buyer, product, settings):
    settings.TASK_LEASE_SECONDS = 60
    settings.FULFILMENT_STOCK_BATCHER = False  # the order gets a task of its own
    stock(product, 1)
    order = buyer.place(product, "MOVED-2")
    task = DBTaskResult.objects.get()
    task.claim("dead-worker")
    DBTaskResult.objects.filter(pk=task.pk).update(
        task_path="orders.tasks.order_fulfil", started_at=timezone.now() - timedelta(seconds=61)
    )

    assert tasks_recover() == 1
    assert _fulfil_tasks(TaskResultStatus.READY) == 1
    run_ready_tasks()
    assert Order.objects.get(pk=order.pk).status == "DELIVERED"
