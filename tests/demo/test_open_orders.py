"""After `seed_demo`, a handful of open orders stay open for agents to cancel and retry."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.enums import OrderStatus, RefundStatus, SubStatus
from orders.models import Order
from orders.rules import OPEN_STATUSES, status_values
from orders.services.actors import Actor
from orders.services.fulfilment import order_cancel, order_retry
from orders.services.recovery import maintenance_sweep
from tests.helpers.tasks import run_ready_tasks

MD5 = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _open(ids: list[int]) -> list[Order]:
    return list(Order.objects.filter(pk__in=ids, status__in=status_values(OPEN_STATUSES)))


def test_the_seeded_open_orders_outlive_the_workers_first_sweep_and_can_be_cancelled_or_retried(
    settings, roles
):
    """Transactional: seeding commits, so its orders' tasks are really queued."""
    settings.PASSWORD_HASHERS = MD5
    call_command("seed_demo", stdout=StringIO())
    seeded = Order.objects.filter(
        status__in=status_values(OPEN_STATUSES), product__vendor__adapter="simulated-slow"
    )
    ids = list(seeded.values_list("pk", flat=True))
    assert len(ids) >= 3 * 3  # a few per client
    assert set(seeded.values_list("status", flat=True)) == {OrderStatus.PLACED, OrderStatus.PENDING}

    # What `make run` starts with: the worker's first sweep, then every ready task.
    maintenance_sweep()
    run_ready_tasks()

    still_open = _open(ids)
    assert len(still_open) == len(ids)
    # Waiting for the slow vendor's next answer; the stalled one stays under its
    # lease until it runs out, then the recovery sweep resumes it.
    waiting = [order for order in still_open if order.sub_status == SubStatus.PENDING_REPROCESS]
    assert len(waiting) >= len(ids) - 3
    assert {order.sub_status for order in still_open} <= {
        SubStatus.PENDING_REPROCESS,
        SubStatus.VENDOR_ORDER_PENDING,
    }
    support = Actor.for_user(get_user_model().objects.get(username="support"))
    practice, retried = waiting[0], waiting[1]
    cancelled = order_cancel(order_id=practice.pk, actor=support, reason="Practice")
    assert cancelled.status == OrderStatus.CANCELLED
    assert cancelled.refund_status in (RefundStatus.REFUNDED, RefundStatus.NOT_REFUNDED)
    order_retry(order_id=retried.pk, actor=support, note="Practice")
    run_ready_tasks()
    retried.refresh_from_db()
    assert retried.status == OrderStatus.PENDING
    assert retried.sub_status == SubStatus.PENDING_REPROCESS
    assert retried.status_changes.filter(actor_label="user:support").exists()


@pytest.mark.django_db
def test_a_second_run_places_a_fresh_handful_once_none_is_left_open(settings):
    settings.PASSWORD_HASHERS = MD5
    call_command("seed_demo", stdout=StringIO())
    first = set(Order.objects.values_list("pk", flat=True))
    support = Actor.for_user(get_user_model().objects.get(username="support"))
    acme = Order.objects.filter(
        client__name="Acme Rewards", status__in=status_values(OPEN_STATUSES)
    )
    for order in acme:
        order_cancel(order_id=order.pk, actor=support, reason="Practice")

    out = StringIO()
    call_command("seed_demo", stdout=out)

    fresh = Order.objects.exclude(pk__in=first)
    assert fresh.count() == 5
    assert set(fresh.values_list("client__name", flat=True)) == {"Acme Rewards"}
    assert sorted(fresh.values_list("reference_code", flat=True)) == [
        f"ACME-{n:05d}" for n in range(101, 106)
    ]
    assert "5 created by this run" in out.getvalue()
