"""Demo-like data for the browser tests and the screenshots. Fake codes only."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from orders.enums import (
    DeliveryType,
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    ProductKind,
    RefundStatus,
    SubStatus,
)
from orders.models import Order, StatusChange
from orders.services.actors import Actor
from orders.services.audit import audit_record
from tests.factories import (
    ClientFactory,
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    VoucherFactory,
)

# (status, sub_status, weight)
OUTCOMES = [
    (OrderStatus.DELIVERED, SubStatus.INVENTORY_FULFILLED, 60),
    (OrderStatus.DELIVERED, SubStatus.VENDOR_VOUCHER_FETCHED, 18),
    (OrderStatus.PARTIALLY_DELIVERED, SubStatus.NOT_REFUNDED, 3),
    (OrderStatus.FAILED, SubStatus.NOT_REFUNDED, 5),
    (OrderStatus.CANCELLED, SubStatus.NOT_REFUNDED, 2),
    (OrderStatus.PENDING, SubStatus.VENDOR_ORDER_CREATED, 3),
    (OrderStatus.PENDING, SubStatus.PENDING_REPROCESS, 2),
    (OrderStatus.PLACED, SubStatus.INITIAL, 1),
]
CUSTOMERS = [
    ("Ada Lovelace", "ada@example.com", "+447700900001"),
    ("Grace Hopper", "grace@example.com", "+15550100"),
    ("Katherine Johnson", "katherine@example.com", "+15550101"),
    ("Margaret Hamilton", "margaret@example.com", "+15550102"),
    ("Hedy Lamarr", "hedy@example.com", "+4915110000"),
]


def make_demo_data(*, orders: int = 140, seed: int = 7) -> dict[str, object]:
    """Clients, products, stock and a week of orders; returns a few handy objects."""
    rng = random.Random(seed)
    now = timezone.now()
    system = Actor.system("fulfilment")
    clients = [ClientFactory(name=n) for n in ("Orbit Rewards", "Nova Perks", "Zenith Bank")]
    products = [
        ProductFactory(name="Nebula Books", brand="Nebula", currency="USD", low_stock_threshold=20),
        ProductFactory(name="Orbit Coffee", brand="Orbit", currency="EUR", low_stock_threshold=15),
        ProductFactory(
            name="Comet Streaming",
            brand="Comet",
            kind=ProductKind.DIGITAL_SERVICE,
            delivery_type=DeliveryType.URL,
            low_stock_threshold=10,
        ),
        ProductFactory(name="Pulsar Games", brand="Pulsar", currency="GBP", low_stock_threshold=8),
    ]
    for product, available in zip(products, (4, 40, 0, 12), strict=True):
        for _ in range(available):
            VoucherFactory(product=product, denomination=Decimal("25.00"))
    weights = [w for *_, w in OUTCOMES]
    made: list[Order] = []
    for index in range(orders):
        status, sub, _ = rng.choices(OUTCOMES, weights=weights)[0]
        product = rng.choice(products)
        placed = now - timedelta(minutes=rng.randint(2, 7 * 24 * 60 - 10))
        if index < 4:
            placed = now - timedelta(minutes=index * 3 + 1)
        name, email, phone = rng.choice(CUSTOMERS)
        quantity = rng.choice([1, 1, 1, 2])
        denomination = rng.choice([Decimal("10.00"), Decimal("25.00"), Decimal("50.00")])
        face = denomination * quantity
        fees = (face * Decimal("0.02")).quantize(Decimal("0.01"))
        order = OrderFactory(
            client=rng.choice(clients),
            product=product,
            reference_code=f"PO-{20260000 + index}",
            status=status,
            sub_status=sub,
            quantity=quantity,
            denomination=denomination,
            face_value=face,
            fees=fees,
            amount=face + fees,
            placed_at=placed,
            customer_name=name,
            customer_email=email,
            customer_phone=phone,
            refund_status=RefundStatus.NOT_REFUNDED
            if sub == SubStatus.NOT_REFUNDED
            else RefundStatus.NONE,
            refund_amount=face + fees if sub == SubStatus.NOT_REFUNDED else Decimal("0.00"),
        )
        delivered = status in (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED)
        delivered_at = placed + timedelta(seconds=rng.randint(2, 30 if "INVENTORY" in sub else 600))
        if delivered:
            Order.objects.filter(pk=order.pk).update(delivered_at=delivered_at)
        for position in range(1, quantity + 1):
            voucher = None
            item_done = delivered and not (
                status == OrderStatus.PARTIALLY_DELIVERED and position == quantity
            )
            if item_done:
                voucher = VoucherFactory(
                    product=product,
                    denomination=denomination,
                    card_number=f"DEMO{rng.randint(10**11, 10**12 - 1)}",
                    pin_code=f"{rng.randint(0, 9999):04d}",
                    voucher_reference_number=f"DEMO-REF-{order.pk}-{position}",
                    claim_url=f"https://claim.example.com/demo/{order.pk}-{position}"
                    if product.delivery_type == DeliveryType.URL
                    else None,
                    status=InventoryStatus.DELIVERED,
                    expires_at=now + timedelta(days=rng.choice([20, 200, 400])),
                )
            OrderItemFactory(
                order=order,
                position=position,
                voucher=voucher,
                status=ItemStatus.DELIVERED
                if item_done
                else (ItemStatus.FAILED if order.is_terminal else ItemStatus.PENDING),
                delivered_at=delivered_at if item_done else None,
            )
        steps = [(OrderStatus.PLACED, SubStatus.INITIAL, placed, "Placed; wallet debited")]
        if status != OrderStatus.PLACED:
            steps.append(
                (OrderStatus.PENDING, SubStatus.PROCESSING, placed + timedelta(seconds=1), "")
            )
            steps.append((status, sub, delivered_at, ""))
        for to_status, to_sub, at, note in steps:
            StatusChange.objects.create(
                order=order,
                to_status=to_status,
                to_sub_status=to_sub,
                actor_label="api:sk_live_demo" if to_status == OrderStatus.PLACED else "system",
                note=note,
                created_at=at,
            )
        audit_record(action="order.create", actor=system, order_id=order.pk)
        made.append(order)
    made.sort(key=lambda o: o.placed_at, reverse=True)
    delivered_orders = [
        o for o in made if o.status == OrderStatus.DELIVERED and o.product.name != "Comet Streaming"
    ]
    return {"orders": made, "clients": clients, "products": products, "delivered": delivered_orders}
