"""Cancel, retry and resend from the order page: confirmed with a reason, audited."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from orders.enums import OrderStatus, SubStatus
from orders.models import AuditEvent, DeliveryEmail, Order, StatusChange
from orders.services.notifications import delivery_email_send_task
from tests.helpers.dashboard import CARD_NUMBER, PIN

pytestmark = pytest.mark.django_db


def post(client, name, order, reason="Customer asked", htmx=False):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(reverse(f"dashboard:{name}", args=[order.pk]), {"reason": reason}, **headers)


def test_cancel_is_confirmed_with_a_reason_audited_and_in_the_timeline(
    support_client, users, placed_order
):
    page = support_client.get(reverse("dashboard:order_detail", args=[placed_order.pk]))
    assert "Cancel order…" in page.content.decode()
    response = post(support_client, "order_cancel", placed_order)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:order_detail", args=[placed_order.pk])
    placed_order.refresh_from_db()
    assert placed_order.status == OrderStatus.CANCELLED
    event = AuditEvent.objects.get(action="order.cancel", order=placed_order)
    assert event.reason == "Customer asked" and event.actor_user_id == users["support"].pk
    change = StatusChange.objects.filter(order=placed_order, to_status="CANCELLED").first()
    assert change.actor_user_id == users["support"].pk
    html = support_client.get(response["Location"]).content.decode()
    assert "Cancel order: done." in html
    assert "Customer asked" in html


def test_cancel_without_a_reason_changes_nothing(support_client, placed_order):
    response = post(support_client, "order_cancel", placed_order, reason="  ", htmx=True)
    assert "Give a reason to confirm." in response.content.decode()
    placed_order.refresh_from_db()
    assert placed_order.status == OrderStatus.PLACED


def test_cancel_refused_by_the_service_shows_its_message(support_client, delivered_order):
    order, _ = delivered_order
    response = post(support_client, "order_cancel", order, htmx=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "can no longer be cancelled" in html
    assert 'id="order-body"' in html and "<html" not in html
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_retry_a_pending_reprocess_order(
    support_client, placed_order, django_capture_on_commit_callbacks
):
    Order.objects.filter(pk=placed_order.pk).update(
        status=OrderStatus.PENDING, sub_status=SubStatus.PENDING_REPROCESS
    )
    page = support_client.get(reverse("dashboard:order_detail", args=[placed_order.pk]))
    assert "Retry fulfilment…" in page.content.decode()
    response = post(support_client, "order_retry", placed_order, reason="vendor is back", htmx=True)
    assert response.status_code == 200
    assert "Retry fulfilment: done." in response.content.decode()
    assert response["HX-Trigger"] == "orderChanged"
    assert AuditEvent.objects.filter(action="order.retry", order=placed_order).count() == 1


def test_resend_queues_a_summary_without_the_code_and_is_audited(
    support_client, delivered_order, django_capture_on_commit_callbacks
):
    order, _ = delivered_order
    with django_capture_on_commit_callbacks() as after_commit:
        response = post(support_client, "order_resend", order, reason="customer lost the mail")
    assert response.status_code == 302
    assert mail.outbox == [] and after_commit  # queued: the request never sends
    queued = DeliveryEmail.objects.get(order=order)
    assert queued.status == "QUEUED"
    delivery_email_send_task.call(queued.pk)  # what the worker runs once the request committed
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["grace@example.com"]
    assert order.reference_code in message.subject
    assert CARD_NUMBER not in message.body and PIN not in message.body
    event = AuditEvent.objects.get(action="order.delivery_email_resend")
    assert event.reason == "customer lost the mail" and event.order_id == order.pk
    page = support_client.get(response["Location"]).content.decode()
    assert "Resend delivery e-mail: queued for grace@example.com" in page
    assert 'data-status="SENT"' in page


def test_a_second_resend_while_one_is_queued_is_refused(support_client, delivered_order):
    order, _ = delivered_order
    post(support_client, "order_resend", order, htmx=True)
    response = post(support_client, "order_resend", order, htmx=True)
    assert "already queued" in response.content.decode()
    assert AuditEvent.objects.filter(action="order.delivery_email_resend").count() == 1


def test_resend_refused_for_an_undelivered_order(support_client, placed_order):
    response = post(support_client, "order_resend", placed_order, htmx=True)
    assert "Only a delivered" in response.content.decode()
    assert mail.outbox == []


@pytest.mark.parametrize("name", ["order_cancel", "order_retry", "order_resend"])
def test_actions_are_post_only(support_client, placed_order, name):
    response = support_client.get(reverse(f"dashboard:{name}", args=[placed_order.pk]))
    assert response.status_code == 405
