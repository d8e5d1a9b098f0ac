"""The lease of a running fulfilment attempt (Order.leased_until), apart from the
retry's due time (next_attempt_at): taken by the run, given back when it ends,
and the one check behind claim, cancel, retry and the recovery sweep."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.errors import OrderNotRetryable
from orders.models import Order
from orders.rules import is_leased, lease_held_q
from orders.services.actors import Actor
from orders.services.fulfilment import _begin, order_fulfil, order_retry
from orders.services.recovery import orders_recover
from tests.factories import stock
from tests.helpers.tasks import lose_waiting_tasks

pytestmark = pytest.mark.django_db

AGENT = Actor.system("support-test")


def test_a_run_leases_the_order_and_a_second_run_meanwhile_does_nothing(buyer, product, settings):
    stock(product, 1)
    order = buyer.place(product, "LEASE-1")
    before = timezone.now()

    _begin(order.pk)  # a worker has started on it
    order.refresh_from_db()

    assert order.leased_until is not None
    lease = timedelta(seconds=settings.TASK_LEASE_SECONDS)
    assert before + lease <= order.leased_until <= timezone.now() + lease
    assert order.next_attempt_at is None  # no retry is scheduled: this is the attempt
    duplicate = order_fulfil(order_id=order.pk)
    assert (duplicate.status, duplicate.sub_status) == ("PENDING", "PROCESSING")
    assert not duplicate.items.filter(status="DELIVERED").exists()


def test_the_lease_is_given_back_when_the_run_finishes(buyer, product):
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "LEASE-2").pk)
    assert order.status == "DELIVERED"
    assert (order.leased_until, order.next_attempt_at) == (None, None)


def test_the_lease_is_given_back_when_the_run_waits_for_its_retry(buyer, product, settings):
    settings.VENDOR_SIM_TRANSIENT_RATE = Decimal("1")
    settings.FULFILMENT_RETRY_BASE_SECONDS = 60
    order = order_fulfil(order_id=buyer.place(product, "LEASE-3").pk)

    assert order.sub_status == "PENDING_REPROCESS"
    assert order.leased_until is None
    assert order.next_attempt_at is not None and order.next_attempt_at > timezone.now()
    # Not leased, so an agent may cancel or retry it at once.
    assert order_retry(order_id=order.pk, actor=AGENT).sub_status == "PROCESSING"


def test_an_order_being_fulfilled_right_now_cannot_be_retried(buyer, product):
    order = buyer.place(product, "LEASE-4")
    _begin(order.pk)
    with pytest.raises(OrderNotRetryable, match="being fulfilled right now"):
        order_retry(order_id=order.pk, actor=AGENT)


def test_a_stuck_order_whose_lease_ran_out_can_be_retried(buyer, product):
    stock(product, 1)
    order = buyer.place(product, "LEASE-5")
    _begin(order.pk)
    Order.objects.filter(pk=order.pk).update(leased_until=timezone.now() - timedelta(seconds=1))

    order = order_retry(order_id=order.pk, actor=AGENT, note="worker died")

    assert order.leased_until is None
    assert order_fulfil(order_id=order.pk).status == "DELIVERED"


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_the_sweep_resumes_a_run_that_died_only_once_its_lease_ran_out(buyer, product, settings):
    settings.TASK_LEASE_SECONDS = 60
    order = buyer.place(product, "LEASE-6")
    _begin(order.pk)
    lose_waiting_tasks()  # the worker died with its task

    assert orders_recover() == 0  # the lease still holds
    ran_out = timezone.now() - timedelta(seconds=settings.WORKER_SWEEP_SECONDS - 5)
    Order.objects.filter(pk=order.pk).update(leased_until=ran_out)
    assert orders_recover() == 0  # a live worker gets a sweep's grace first
    ran_out -= timedelta(seconds=10)
    Order.objects.filter(pk=order.pk).update(leased_until=ran_out)

    assert orders_recover() == 1
    assert orders_recover() == 0  # its new task is queued


def test_the_lease_check_reads_the_same_in_python_and_in_sql(buyer, product):
    order = buyer.place(product, "LEASE-7")
    now = timezone.now()
    for leased_until in (None, now - timedelta(seconds=1), now, now + timedelta(seconds=1)):
        Order.objects.filter(pk=order.pk).update(leased_until=leased_until)
        in_sql = Order.objects.filter(lease_held_q(at=now), pk=order.pk).exists()
        assert in_sql == is_leased(leased_until=leased_until, at=now), leased_until
