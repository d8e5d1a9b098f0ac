"""Webhooks: signed, recorded per attempt, retried until delivered exactly once."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from orders.crypto import unseal
from orders.errors import ValidationFailed
from orders.models import WebhookAttempt, WebhookDelivery
from orders.services.actors import Actor
from orders.services.fulfilment import order_fulfil
from orders.services.webhooks import webhook_backoff_seconds, webhook_endpoint_create
from tests.factories import stock
from tests.helpers.tasks import run_ready_tasks, wait_until
from tests.helpers.webhooks import verify_starship_signature

ADMIN = Actor.system("webhook-test")


def test_backoff_doubles_and_is_capped_at_an_hour(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    assert [webhook_backoff_seconds(attempts=n) for n in (1, 2, 3)] == [30, 60, 120]
    assert webhook_backoff_seconds(attempts=20) == 3600


@pytest.mark.django_db
def test_only_http_urls_and_known_events_are_accepted(buyer):
    with pytest.raises(ValidationFailed, match="http"):
        webhook_endpoint_create(
            client=buyer.client, url="ftp://example.com/x", events=["order.failed"], actor=ADMIN
        )
    with pytest.raises(ValidationFailed):
        webhook_endpoint_create(
            client=buyer.client, url="https://example.com/x", events=["order.eaten"], actor=ADMIN
        )
    endpoint, secret = webhook_endpoint_create(
        client=buyer.client, url="https://example.com/x", events=["ORDER.FAILED"], actor=ADMIN
    )
    assert endpoint.events == ["order.failed"] and secret.startswith("whsec_")
    assert endpoint.secret is not None and secret not in endpoint.secret.ciphertext


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_event_is_retried_until_received_exactly_once(buyer, product, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    hook = receiver(failures=3)
    _, secret = webhook_endpoint_create(
        client=buyer.client, url=hook.url, events=["order.delivered"], actor=ADMIN
    )
    stock(product, 1)
    order = order_fulfil(order_id=buyer.place(product, "HOOK-1").pk)
    assert order.status == "DELIVERED"

    delivery = WebhookDelivery.objects.get(order=order)
    wait_until(
        lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "DELIVERED",
        tick=run_ready_tasks,
        timeout=30,
        what="the webhook to be delivered",
    )

    delivery.refresh_from_db()
    assert len(hook.requests) == 4
    assert delivery.attempts == 4 and delivery.last_status_code == 200
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("id"))
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert all(a.duration_ms >= 0 for a in attempts) and attempts[0].error == "HTTP 500"
    headers, body = hook.requests[-1]
    assert verify_starship_signature(secret, headers["Starship-Signature"], body)
    assert not verify_starship_signature("whsec_wrong", headers["Starship-Signature"], body)
    assert not verify_starship_signature(secret, headers["Starship-Signature"], body + b" ")
    event = json.loads(body)
    assert event["event"] == "order.delivered" and headers["Starship-Event"] == "order.delivered"
    summary = event["data"]["order"]
    assert summary["id"] == order.pk and summary["status"] == "DELIVERED"
    assert summary["delivered_count"] == 1 and summary["amount"] == "25.00"
    run_ready_tasks()
    assert len(hook.requests) == 4  # nothing more arrives


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_failed_orders_announce_failure_and_refund_without_secrets(
    buyer, product, receiver, settings
):
    hook = receiver()
    webhook_endpoint_create(
        client=buyer.client,
        url=hook.url,
        events=["order.failed", "order.refunded", "order.delivered"],
        actor=ADMIN,
    )
    stock(product, 1)
    delivered = order_fulfil(order_id=buyer.place(product, "HOOK-OK").pk)
    settings.VENDOR_SIM_REJECT_RATE = Decimal("1")
    failed = order_fulfil(order_id=buyer.place(product, "HOOK-FAIL").pk)

    wait_until(lambda: len(hook.requests) == 3, tick=run_ready_tasks, what="three webhook requests")

    events = sorted(
        (json.loads(b)["event"], json.loads(b)["data"]["order"]["id"]) for _, b in hook.requests
    )
    assert events == [
        ("order.delivered", delivered.pk),
        ("order.failed", failed.pk),
        ("order.refunded", failed.pk),
    ]
    voucher = delivered.items.get().voucher
    assert voucher is not None and voucher.card_number and voucher.pin_code
    code, pin = unseal(voucher.card_number), unseal(voucher.pin_code)
    for _, body in hook.requests:
        text = body.decode()
        assert code not in text and f'"{pin}"' not in text
        assert "card_number" not in text and "pin_code" not in text
