"""Webhooks: the client's own endpoints, their secrets, test events and delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Path, Query, Router, Status

from orders.api.auth import scoped
from orders.api.schemas import (
    BODY_ERRORS,
    MAX_ID,
    ErrorOut,
    WebhookDeliveryPageOut,
    WebhookDeliveryQueuedOut,
    WebhookEndpointCreatedOut,
    WebhookEndpointIn,
    WebhookEndpointListOut,
    WebhookSecretOut,
)
from orders.enums import ApiScope
from orders.selectors.paging import CURSOR_PATTERN
from orders.selectors.webhooks import DeliveryPage, webhook_delivery_list, webhook_endpoint_list
from orders.services.webhooks import (
    webhook_delivery_replay,
    webhook_endpoint_create,
    webhook_endpoint_deactivate,
    webhook_secret_rotate,
    webhook_test_send,
)

router = Router(tags=["Webhooks"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut, 500: ErrorOut}
EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get(
    "",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={200: WebhookEndpointListOut, **ERRORS},
    summary="List webhook endpoints",
)
def webhook_endpoint_list_view(request: HttpRequest) -> dict[str, Any]:
    """Your endpoints, deactivated ones too; never their signing secrets."""
    client_id = request.auth.client.pk  # type: ignore[attr-defined]
    return {"results": webhook_endpoint_list(client_id=client_id)}


@router.post(
    "",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={201: WebhookEndpointCreatedOut, 400: ErrorOut, **BODY_ERRORS, **ERRORS},
    summary="Register a webhook endpoint",
)
def webhook_endpoint_create_view(request: HttpRequest, payload: WebhookEndpointIn) -> Status:
    """Register an https:// endpoint for some events; the answer carries its signing
    secret, shown this once. 400 destination_not_allowed: the host is, or resolves
    to, a private, loopback, link-local or otherwise non-public address."""
    principal = request.auth  # type: ignore[attr-defined]
    endpoint, secret = webhook_endpoint_create(
        client=principal.client,
        url=payload.url,
        events=payload.events,
        actor=principal.actor(request),
    )
    return Status(
        201,
        {
            "id": endpoint.pk,
            "url": endpoint.url,
            "events": endpoint.events,
            "is_active": endpoint.is_active,
            "created_at": endpoint.created_at,
            "secret": secret,
        },
    )


@router.delete(
    "/{id}",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={204: None, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Deactivate a webhook endpoint",
)
def webhook_endpoint_deactivate_view(request: HttpRequest, id: EndpointId) -> HttpResponse:
    """Stop sending events to an endpoint. It stays listed (`is_active: false`) with
    its delivery log; deliveries still queued for it fail. Repeating it is harmless."""
    principal = request.auth  # type: ignore[attr-defined]
    webhook_endpoint_deactivate(
        client_id=principal.client.pk, endpoint_id=id, actor=principal.actor(request)
    )
    return HttpResponse(status=204)


@router.post(
    "/{id}/rotate-secret",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={200: WebhookSecretOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, **ERRORS},
    summary="Rotate a webhook endpoint's signing secret",
)
def webhook_secret_rotate_view(request: HttpRequest, id: EndpointId) -> dict[str, Any]:
    """A new signing secret, shown this once; every delivery sent from now on
    (retries of earlier events too) is signed with it."""
    principal = request.auth  # type: ignore[attr-defined]
    secret = webhook_secret_rotate(
        client_id=principal.client.pk, endpoint_id=id, actor=principal.actor(request)
    )
    return {"id": id, "secret": secret}


@router.post(
    "/{id}/test",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={202: WebhookDeliveryQueuedOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, **ERRORS},
    summary="Send a test event",
)
def webhook_test_send_view(request: HttpRequest, id: EndpointId) -> Status:
    """Queue a signed `webhook.test` event (no order data) to the endpoint, sent and
    retried like any event; follow it in the delivery log."""
    principal = request.auth  # type: ignore[attr-defined]
    delivery = webhook_test_send(
        client_id=principal.client.pk, endpoint_id=id, actor=principal.actor(request)
    )
    return Status(202, {"delivery_id": delivery.pk})


@router.get(
    "/{id}/deliveries",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={200: WebhookDeliveryPageOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="List an endpoint's deliveries",
)
def webhook_delivery_list_view(
    request: HttpRequest,
    id: EndpointId,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN, max_length=41)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, by keyset: follow `next`. Each says
    its event, order, status, attempts and last answer; never the payload."""
    return webhook_delivery_list(
        client_id=request.auth.client.pk,  # type: ignore[attr-defined]
        endpoint_id=id,
        cursor=cursor,
        limit=limit,
    )


@router.post(
    "/{id}/deliveries/{delivery_id}/replay",
    auth=scoped(ApiScope.WEBHOOKS_MANAGE),
    response={202: WebhookDeliveryQueuedOut, 400: ErrorOut, 404: ErrorOut, 409: ErrorOut, **ERRORS},
    summary="Replay a delivery",
)
def webhook_delivery_replay_view(
    request: HttpRequest, id: EndpointId, delivery_id: EndpointId
) -> Status:
    """Send a DELIVERED or FAILED delivery again (same `Starship-Delivery` id and
    body, signed anew): it is PENDING again with a new 24-hour retry window and its
    `attempts` counted from 0. 409 if it is still PENDING."""
    principal = request.auth  # type: ignore[attr-defined]
    delivery = webhook_delivery_replay(
        client_id=principal.client.pk,
        endpoint_id=id,
        delivery_id=delivery_id,
        actor=principal.actor(request),
    )
    return Status(202, {"delivery_id": delivery.pk})
