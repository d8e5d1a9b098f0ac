"""Large orders for read-side tests: a client's order of thousands of delivered units,
its vouchers and items written with bulk_create (no fulfilment run)."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from orders.enums import InventoryStatus, ItemStatus, OrderStatus, SubStatus
from orders.models import Client, Order, OrderItem, Voucher
from tests.factories import OrderFactory, ProductFactory, VoucherFactory


def card_numbers(order: Order) -> list[str]:
    """The card numbers `delivered_order` gave the order's units, in position order."""
    return [f"6011{order.pk:06d}{n:06d}" for n in range(order.quantity)]


def delivered_order(client: Client, units: int, *, delivered: int | None = None) -> Order:
    """An order of `units` of the client, its first `delivered` units (all by default)
    delivered from stock, the rest failed: DELIVERED or PARTIALLY_DELIVERED."""
    delivered = units if delivered is None else delivered
    product = ProductFactory(bulk_limit=units)
    now = timezone.now()
    status, sub_status = (
        (OrderStatus.DELIVERED, SubStatus.INVENTORY_FULFILLED)
        if delivered == units
        else (OrderStatus.PARTIALLY_DELIVERED, SubStatus.PARTIAL)
    )
    order = OrderFactory(
        client=client,
        product=product,
        quantity=units,
        status=status,
        sub_status=sub_status,
        delivered_at=now,
    )
    cards = card_numbers(order)
    vouchers = Voucher.objects.bulk_create(
        VoucherFactory.build(
            product=product,
            denomination=Decimal("25.00"),
            card_number=cards[n],
            status=InventoryStatus.DELIVERED,
            delivered_at=now,
        )
        for n in range(delivered)
    )
    OrderItem.objects.bulk_create(
        OrderItem(
            order=order,
            position=n + 1,
            voucher=vouchers[n] if n < delivered else None,
            status=ItemStatus.DELIVERED if n < delivered else ItemStatus.FAILED,
            delivered_at=now if n < delivered else None,
        )
        for n in range(units)
    )
    return order
