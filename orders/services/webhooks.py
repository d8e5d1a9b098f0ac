"""Webhooks: signed order events, delivered by a task with retries for 24 hours.

An event row (WebhookDelivery, unique per endpoint, order and event) is
written in the same transaction as the status change that causes it, and the
delivery task is enqueued on commit. Each POST is signed with HMAC-SHA256
over ``f"{timestamp}.{body}"`` (header ``Starship-Signature: t=<unix>,v1=<hex>``),
times out after WEBHOOK_TIMEOUT_SECONDS, and is recorded as a WebhookAttempt.
A 2xx answer marks the delivery DELIVERED; anything else is retried with
exponential backoff until WEBHOOK_RETRY_HOURS have passed, then FAILED.
Payloads carry the order summary only, never a voucher secret. The task
`webhook_deliver_task` runs `webhook_deliver`; claiming and the lost-task
sweep are the outbox's (see outbox.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from orders import logs
from orders.crypto import unseal
from orders.enums import WebhookDeliveryStatus, WebhookEvent
from orders.errors import ValidationFailed
from orders.models import Client, Order, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.representations import OrderWebhookOut
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.backoff import backoff_seconds
from orders.services.outbox import outbox_claim, outbox_overdue
from orders.tasks import enqueue, enqueue_on_commit

SIGNATURE_HEADER = "Starship-Signature"
USER_AGENT = "Starship-Webhooks/1"


def webhook_sign(*, secret: str, timestamp: int, body: str) -> str:
    """The Starship-Signature header value for one request body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_backoff_seconds(*, attempts: int) -> int:
    """Delay before the next attempt after `attempts` failures: base × 2^(n-1), ≤ 1 h."""
    return backoff_seconds(base=settings.WEBHOOK_RETRY_BASE_SECONDS, attempts=attempts)


def _validate_url(url: str) -> str:
    url = (url or "").strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ValidationFailed("The webhook URL must start with http:// or https://.", field="url")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationFailed("The webhook URL is not a valid URL.", field="url") from None
    return url


@transaction.atomic
def webhook_endpoint_create(
    *, client: Client, url: str, events: list[str], actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """Register an http(s) endpoint for order events; the signing secret is returned once."""
    clean_url = _validate_url(url)
    if not events:
        raise ValidationFailed("Choose at least one event.", field="events")
    names = sorted({str(WebhookEvent.parse(event, field="events")) for event in events})
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        client=client, url=clean_url, secret=secret, events=names
    )
    audit_record(
        action="webhook.endpoint_create",
        actor=actor,
        data={
            "endpoint_id": endpoint.pk,
            "client_id": client.pk,
            "url": clean_url,
            "events": names,
        },
    )
    return endpoint, secret


def order_summary(*, order: Order) -> dict[str, Any]:
    """What a webhook says about an order: the API's representation of it
    (orders/representations.py) with the event's fields; no voucher data, ever."""
    return OrderWebhookOut.from_orm(order).model_dump(mode="json")


def webhook_event_emit(*, order: Order, event: WebhookEvent) -> list[WebhookDelivery]:
    """Record `event` for each subscribed endpoint (once) and deliver it after commit.

    Call inside the transaction that changes the order, so the event exists
    exactly when the change does.
    """
    endpoints = WebhookEndpoint.objects.filter(client_id=order.client_id, is_active=True)
    wanted = [e for e in endpoints if str(event) in (e.events or [])]
    if not wanted:
        return []
    now = timezone.now()
    payload = order_summary(order=order)
    created = []
    for endpoint in wanted:
        delivery, is_new = WebhookDelivery.objects.get_or_create(
            endpoint=endpoint,
            order=order,
            event=str(event),
            defaults={
                "payload": payload,
                "next_attempt_at": now,
                "give_up_at": now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            },
        )
        if is_new:
            created.append(delivery)
            enqueue_on_commit(webhook_deliver_task, delivery.pk)
    return created


def webhook_events_emit(*, orders: list[Order], event: WebhookEvent) -> list[WebhookDelivery]:
    """`webhook_event_emit` for many orders that have just reached the same state:
    one read of the endpoints and one INSERT of the events.

    Only for orders none of whose subscribed endpoints has this event yet
    (orders that move into the state now, under their row lock): a duplicate
    breaks the unique constraint and rolls the caller's transaction back.
    """
    if not orders:
        return []
    endpoints = WebhookEndpoint.objects.filter(
        client_id__in={order.client_id for order in orders}, is_active=True
    )
    by_client: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        if str(event) in (endpoint.events or []):
            by_client.setdefault(endpoint.client_id, []).append(endpoint)
    if not by_client:
        return []
    now = timezone.now()
    rows = []
    for order in orders:
        wanted = by_client.get(order.client_id, [])
        if not wanted:
            continue
        payload = order_summary(order=order)
        rows += [
            WebhookDelivery(
                endpoint=endpoint,
                order=order,
                event=str(event),
                payload=payload,
                next_attempt_at=now,
                give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            )
            for endpoint in wanted
        ]
    created = WebhookDelivery.objects.bulk_create(rows)
    for delivery in created:
        enqueue_on_commit(webhook_deliver_task, delivery.pk)
    return created


def _body(delivery: WebhookDelivery) -> str:
    envelope = {
        "id": f"whd_{delivery.pk}",
        "event": delivery.event,
        "created_at": delivery.created_at,
        "data": {"order": delivery.payload},
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer that is not 2xx: retried, never followed


_opener = urllib.request.build_opener(_NoRedirect)


def _post(*, url: str, body: str, headers: dict[str, str]) -> tuple[int | None, str]:
    request = urllib.request.Request(  # noqa: S310 - scheme checked on registration
        url, data=body.encode(), headers=headers, method="POST"
    )
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"{type(exc).__name__}: {reason}"[:500]


@task
def webhook_deliver_task(delivery_id: int, request_id: str = "") -> None:
    """POST one order event to a client's endpoint (retries schedule themselves)."""
    with logs.bound(request_id=request_id or None):
        webhook_deliver(delivery_id=delivery_id)


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one due event; record the attempt; mark it delivered, retry later, or give up."""
    delivery = outbox_claim(
        WebhookDelivery.objects.select_related("endpoint").filter(
            status=WebhookDeliveryStatus.PENDING
        ),
        pk=delivery_id,
        # The request's timeout with room to spare: a dead worker's claim runs out.
        hold_seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3 + 10,
    )
    if delivery is None:
        return WebhookDelivery.objects.filter(pk=delivery_id).first()
    endpoint = delivery.endpoint
    body = _body(delivery)
    secret = unseal(endpoint.secret) if endpoint.secret is not None else ""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Starship-Event": delivery.event,
        "Starship-Delivery": f"whd_{delivery.pk}",
        SIGNATURE_HEADER: webhook_sign(secret=secret, timestamp=int(time.time()), body=body),
    }
    started = time.monotonic()
    status_code, error = (
        _post(url=endpoint.url, body=body, headers=headers)
        if endpoint.is_active
        else (None, "endpoint disabled")
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(
        delivery_id=delivery.pk, status_code=status_code, error=error, duration_ms=duration_ms
    )


@transaction.atomic
def _record_attempt(
    *, delivery_id: int, status_code: int | None, error: str, duration_ms: int
) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.select_for_update(no_key=True).get(pk=delivery_id)
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=status_code, duration_ms=duration_ms, error=error
    )
    delivery.attempts += 1
    delivery.last_status_code = status_code
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = WebhookDeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.give_up_at is not None and now >= delivery.give_up_at:
        delivery.status = WebhookDeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        wait = timedelta(seconds=webhook_backoff_seconds(attempts=delivery.attempts))
        due = now + wait
        if delivery.give_up_at is not None:
            due = min(due, delivery.give_up_at)
        delivery.next_attempt_at = due
        enqueue_on_commit(webhook_deliver_task, delivery.pk, run_after=due)
    delivery.save(
        update_fields=["status", "attempts", "last_status_code", "delivered_at", "next_attempt_at"]
    )
    return delivery


def webhook_deliveries_resume(*, overdue_seconds: int | None = None, limit: int = 500) -> int:
    """Re-enqueue PENDING events whose task was lost (due for longer than the lease)."""
    ids = outbox_overdue(
        WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING),
        overdue_seconds=overdue_seconds,
        limit=limit,
    )
    for delivery_id in ids:
        enqueue(webhook_deliver_task, delivery_id)
    return len(ids)
