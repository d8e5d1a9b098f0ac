"""Background task entry points. Thin: each takes ids and calls one service."""

from django.tasks import task


@task
def order_fulfil(order_id: int) -> None:
    """Fulfil a placed order (inventory first, then the vendor)."""
    from orders.services.fulfilment import order_fulfil as fulfil

    fulfil(order_id=order_id)
