"""Background task entry points. Thin: each takes ids and calls one service."""

from django.tasks import task


@task
def order_fulfil(order_id: int) -> None:
    """Fulfil a placed order (inventory first, then the vendor)."""
    from orders.services.fulfilment import order_fulfil as fulfil

    fulfil(order_id=order_id)


@task
def webhook_deliver(delivery_id: int) -> None:
    """POST one order event to a client's endpoint (retries schedule themselves)."""
    from orders.services.webhooks import webhook_deliver as deliver

    deliver(delivery_id=delivery_id)


@task
def delivery_email_send(email_id: int) -> None:
    """Send one queued delivery e-mail (after the request's commit, never inside it)."""
    from orders.services.notifications import delivery_email_send as send

    send(email_id=email_id)
