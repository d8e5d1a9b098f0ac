"""Reads of a client's webhook endpoints and their delivery log (API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from orders.errors import NotFound
from orders.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.selectors.paging import keyset_slice


def webhook_endpoint_list(*, client_id: int) -> list[WebhookEndpoint]:
    """The client's endpoints, oldest first, deactivated ones too; never the secret."""
    return list(WebhookEndpoint.objects.filter(client_id=client_id).defer("secret").order_by("id"))


def webhook_endpoint_get(*, client_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the client's endpoints (no secret); another client's is NotFound."""
    endpoint = (
        WebhookEndpoint.objects.filter(pk=endpoint_id, client_id=client_id).defer("secret").first()
    )
    if endpoint is None:
        raise NotFound()
    return endpoint


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: Sequence[WebhookDelivery]
    next_cursor: str | None = None


def webhook_delivery_list(
    *, client_id: int, endpoint_id: int, cursor: str | None = None, limit: int = 25
) -> DeliveryPage:
    """An endpoint's deliveries, newest first, by keyset on (created_at, id), each
    with its last attempt's error; without payloads (one query per page)."""
    endpoint = webhook_endpoint_get(client_id=client_id, endpoint_id=endpoint_id)
    last_error = (
        WebhookAttempt.objects.filter(delivery_id=OuterRef("pk")).order_by("-id").values("error")
    )
    qs = (
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk)
        .defer("payload")
        .annotate(last_error=Subquery(last_error[:1]))
    )
    rows, next_cursor, _ = keyset_slice(qs, field="created_at", cursor=cursor, limit=limit)
    return DeliveryPage(deliveries=rows, next_cursor=next_cursor)
