"""Delivery e-mails: retry backoff, a lost task resumed by the sweep, one queued at a time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from orders.enums import DeliveryEmailStatus, OrderStatus
from orders.errors import ValidationFailed
from orders.models import DeliveryEmail
from orders.services.notifications import (
    delivery_email_backoff_seconds,
    delivery_email_queue,
    delivery_email_send,
)
from orders.services.recovery import maintenance_sweep
from tests.factories import OrderFactory
from tests.helpers.tasks import lose_waiting_tasks, run_ready_tasks, wait_until


def test_backoff_doubles_and_is_capped_at_an_hour(settings):
    settings.EMAIL_RETRY_BASE_SECONDS = 30
    assert [delivery_email_backoff_seconds(attempts=n) for n in (1, 2, 3)] == [30, 60, 120]
    assert delivery_email_backoff_seconds(attempts=20) == 3600


@pytest.mark.django_db
def test_only_a_delivered_order_with_an_address_is_queued(system_actor):
    placed = OrderFactory(status=OrderStatus.PLACED)
    with pytest.raises(ValidationFailed, match="Only a delivered"):
        delivery_email_queue(order_id=placed.pk, actor=system_actor)
    no_address = OrderFactory(status=OrderStatus.DELIVERED, customer_email="")
    with pytest.raises(ValidationFailed, match="no customer e-mail"):
        delivery_email_queue(order_id=no_address.pk, actor=system_actor)
    assert not DeliveryEmail.objects.exists()


@pytest.mark.django_db
def test_an_email_not_yet_due_is_left_alone(system_actor):
    order = OrderFactory(status=OrderStatus.DELIVERED)
    email = delivery_email_queue(order_id=order.pk, actor=system_actor)
    DeliveryEmail.objects.filter(pk=email.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    delivery_email_send(email_id=email.pk)  # a duplicated or early task
    email.refresh_from_db()
    assert email.status == DeliveryEmailStatus.QUEUED and email.attempts == 0
    assert mail.outbox == []


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_lost_send_task_is_enqueued_again_by_the_sweep(system_actor, settings):
    order = OrderFactory(status=OrderStatus.DELIVERED)
    email = delivery_email_queue(order_id=order.pk, actor=system_actor)
    lose_waiting_tasks()  # the worker lost the task
    overdue = timezone.now() - timedelta(seconds=settings.TASK_LEASE_SECONDS + 1)
    DeliveryEmail.objects.filter(pk=email.pk).update(next_attempt_at=overdue)

    assert maintenance_sweep()["emails_resumed"] == 1
    wait_until(
        lambda: DeliveryEmail.objects.get(pk=email.pk).status == DeliveryEmailStatus.SENT,
        tick=run_ready_tasks,
        what="the resumed e-mail to be sent",
    )
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [order.customer_email]
