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

SSRF: unless WEBHOOK_ALLOW_PRIVATE_NETWORKS, a URL must be https:// (http://
too under DEBUG) and every address its host resolves to must be public
(addresses.is_public_address), at registration and again at each delivery:
the request connects to one of the addresses just checked (TLS still verifies
the certificate for the host name, sent as SNI and Host), so a DNS answer that
changes in between (rebinding) cannot point it elsewhere. A refused
destination fails the delivery at once, without retries.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from orders import logs
from orders.addresses import is_public_address
from orders.crypto import unseal
from orders.enums import WebhookDeliveryStatus, WebhookEvent
from orders.errors import (
    DestinationNotAllowed,
    NotFound,
    ValidationFailed,
    WebhookDeliveryNotReplayable,
    WebhookEndpointInactive,
)
from orders.models import Client, Order, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.representations import OrderWebhookOut
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.backoff import backoff_seconds
from orders.services.outbox import outbox_claim, outbox_overdue
from orders.tasks import enqueue, enqueue_on_commit

SIGNATURE_HEADER = "Starship-Signature"
USER_AGENT = "Starship-Webhooks/1"
# Sent on request (POST /webhooks/{id}/test), to any endpoint whatever its events:
# no order, not a subscribable event.
TEST_EVENT = "webhook.test"
TEST_PAYLOAD = {"message": "A test event from Starship Orders: your endpoint is reachable."}
REFUSED_PRIVATE = "destination not allowed: private network"


def webhook_sign(*, secret: str, timestamp: int, body: str) -> str:
    """The Starship-Signature header value for one request body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_backoff_seconds(*, attempts: int) -> int:
    """Delay before the next attempt after `attempts` failures: base × 2^(n-1), ≤ 1 h."""
    return backoff_seconds(base=settings.WEBHOOK_RETRY_BASE_SECONDS, attempts=attempts)


class UnresolvableHost(Exception):
    """The destination's host name has no address right now."""


def _private_allowed() -> bool:
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS)


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def webhook_destination_addresses(*, host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, each one public unless
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: else DestinationNotAllowed (one private
    answer refuses the name: a client cannot pick which one is used)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise UnresolvableHost(host) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in answers))
    if not addresses:
        raise UnresolvableHost(host)
    if not _private_allowed() and not all(is_public_address(a) for a in addresses):
        raise DestinationNotAllowed()
    return addresses


def _validate_url(url: str) -> str:
    url = (url or "").strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationFailed("The webhook URL must start with http:// or https://.", field="url")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationFailed("The webhook URL is not a valid URL.", field="url") from None
    if scheme != "https" and not (_private_allowed() or settings.DEBUG):
        raise ValidationFailed("The webhook URL must start with https://.", field="url")
    if not _private_allowed():
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            webhook_destination_addresses(host=host, port=_port(parts))
        except UnresolvableHost:
            raise ValidationFailed(
                f"The webhook URL's host {host!r} does not resolve to any address.", field="url"
            ) from None
    return url


@transaction.atomic
def webhook_endpoint_create(
    *, client: Client, url: str, events: list[str], actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for order events, https:// to a public address unless
    WEBHOOK_ALLOW_PRIVATE_NETWORKS (http:// also under DEBUG); the signing secret is
    returned once. The DNS check runs before the transaction's first query."""
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


def _endpoint_of(*, client_id: int, endpoint_id: int, active: bool = False) -> WebhookEndpoint:
    """The client's endpoint, locked; another client's is NotFound like an unknown id."""
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, client_id=client_id)
        .first()
    )
    if endpoint is None:
        raise NotFound()
    if active and not endpoint.is_active:
        raise WebhookEndpointInactive("This webhook endpoint is deactivated.")
    return endpoint


@transaction.atomic
def webhook_endpoint_deactivate(*, client_id: int, endpoint_id: int, actor: Actor) -> None:
    """Stop sending to an endpoint; it and its delivery log stay (idempotent)."""
    endpoint = _endpoint_of(client_id=client_id, endpoint_id=endpoint_id)
    if not endpoint.is_active:
        return
    endpoint.is_active = False
    endpoint.save(update_fields=["is_active"])
    audit_record(
        action="webhook.endpoint_deactivate",
        actor=actor,
        data={"endpoint_id": endpoint.pk, "client_id": client_id, "url": endpoint.url},
    )


@transaction.atomic
def webhook_secret_rotate(*, client_id: int, endpoint_id: int, actor: Actor) -> str:
    """A new signing secret for an active endpoint, returned once; the old one
    stops signing at once (deliveries are signed when sent)."""
    endpoint = _endpoint_of(client_id=client_id, endpoint_id=endpoint_id, active=True)
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.secret = secret
    endpoint.save(update_fields=["secret"])
    audit_record(
        action="webhook.secret_rotate",
        actor=actor,
        data={"endpoint_id": endpoint.pk, "client_id": client_id},
    )
    return secret


@transaction.atomic
def webhook_test_send(*, client_id: int, endpoint_id: int, actor: Actor) -> WebhookDelivery:
    """Queue a `webhook.test` event (no order) to an active endpoint, delivered,
    signed and retried like any other."""
    endpoint = _endpoint_of(client_id=client_id, endpoint_id=endpoint_id, active=True)
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        order=None,
        event=TEST_EVENT,
        payload=TEST_PAYLOAD,
        next_attempt_at=now,
        give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
    )
    enqueue_on_commit(webhook_deliver_task, delivery.pk)
    audit_record(
        action="webhook.test_send",
        actor=actor,
        data={"endpoint_id": endpoint.pk, "client_id": client_id, "delivery_id": delivery.pk},
    )
    return delivery


@transaction.atomic
def webhook_delivery_replay(
    *, client_id: int, endpoint_id: int, delivery_id: int, actor: Actor
) -> WebhookDelivery:
    """Send a DELIVERED or FAILED event again: it is PENDING once more, with a
    fresh retry window and `attempts` counted from 0 (the earlier attempts stay
    in its attempt log)."""
    endpoint = _endpoint_of(client_id=client_id, endpoint_id=endpoint_id, active=True)
    delivery = (
        WebhookDelivery.objects.select_for_update(no_key=True)
        .filter(pk=delivery_id, endpoint=endpoint)
        .first()
    )
    if delivery is None:
        raise NotFound()
    if delivery.status == WebhookDeliveryStatus.PENDING:
        raise WebhookDeliveryNotReplayable("This delivery is still queued; it is sent already.")
    previous = delivery.status
    now = timezone.now()
    delivery.status = WebhookDeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.delivered_at = None
    delivery.next_attempt_at = now
    delivery.give_up_at = now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    delivery.save(
        update_fields=["status", "attempts", "delivered_at", "next_attempt_at", "give_up_at"]
    )
    enqueue_on_commit(webhook_deliver_task, delivery.pk)
    audit_record(
        action="webhook.delivery_replay",
        actor=actor,
        order_id=delivery.order_id,
        data={
            "endpoint_id": endpoint.pk,
            "client_id": client_id,
            "delivery_id": delivery.pk,
            "previous_status": str(previous),
        },
    )
    return delivery


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
    data = delivery.payload if delivery.event == TEST_EVENT else {"order": delivery.payload}
    envelope = {
        "id": f"whd_{delivery.pk}",
        "event": delivery.event,
        "created_at": delivery.created_at,
        "data": data,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to `address`, an address already checked, with the URL's host as Host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to `address`, an address already checked; SNI and the certificate
    check are for the URL's host name, as if it had been resolved here."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str = ""
    permanent: bool = False  # a refusal no retry can change


def _post(*, url: str, body: str, headers: dict[str, str]) -> PostResult:
    """POST `body` to `url`, connecting only to an address checked just now. A
    redirect is an answer that is not 2xx: retried, never followed."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", _port(parts)
    try:
        addresses = webhook_destination_addresses(host=host, port=port)
    except DestinationNotAllowed:
        return PostResult(None, REFUSED_PRIVATE, permanent=True)
    except UnresolvableHost:
        return PostResult(None, f"DNS: {host} does not resolve"[:500])
    connection_class = (
        _PinnedHTTPSConnection if parts.scheme.lower() == "https" else _PinnedHTTPConnection
    )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    error = ""
    for address in addresses:  # as socket.create_connection does: the first that answers
        connection = connection_class(host, port, address=address, timeout=timeout)
        try:
            connection.request("POST", path, body=body.encode(), headers=headers)
            status = connection.getresponse().status
        except (http.client.HTTPException, ssl.SSLError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            continue
        finally:
            connection.close()
        return PostResult(status, "" if 200 <= status < 300 else f"HTTP {status}")
    return PostResult(None, error)


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
    result = (
        _post(url=endpoint.url, body=body, headers=headers)
        if endpoint.is_active
        else PostResult(None, "endpoint deactivated", permanent=True)
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record_attempt(delivery_id=delivery.pk, result=result, duration_ms=duration_ms)


@transaction.atomic
def _record_attempt(*, delivery_id: int, result: PostResult, duration_ms: int) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.select_for_update(no_key=True).get(pk=delivery_id)
    now = timezone.now()
    status_code = result.status_code
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=status_code, duration_ms=duration_ms, error=result.error
    )
    delivery.attempts += 1
    delivery.last_status_code = status_code
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = WebhookDeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif result.permanent or (delivery.give_up_at is not None and now >= delivery.give_up_at):
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
