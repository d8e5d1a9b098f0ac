"""factory_boy factories for the domain models, and the helpers that make domain data
(stock, a refundable order, a delivered order) for tests of every layer."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from orders.crypto import fingerprint
from orders.enums import (
    DeliveryType,
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    ProductKind,
    RefundStatus,
    SubStatus,
    VoucherSource,
    WebhookDeliveryStatus,
)
from orders.models import (
    Client,
    ImportBatch,
    Order,
    OrderItem,
    Product,
    Vendor,
    Voucher,
    Wallet,
    WalletCreditRequest,
)
from orders.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.services.actors import Actor
from orders.services.clients import client_create
from orders.services.placing import Customer, order_create
from orders.services.transitions import order_transition


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@starship.example")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(user: Any, create: bool, extracted: str | None, **kwargs: Any) -> None:
        # Saved with or without a role: the session of a user whose password hash
        # was never stored is dropped on the next request.
        if not create:
            return
        if extracted == "admin":
            user.is_superuser = True
        elif extracted:
            user.groups.add(Group.objects.get(name=extracted))
        user.save()


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")


class WalletFactory(factory.django.DjangoModelFactory):
    """A wallet with balance 0; fund it with wallet_top_up so the ledger holds."""

    class Meta:
        model = Wallet

    client = factory.SubFactory(ClientFactory)
    currency = "USD"


class VendorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vendor
        django_get_or_create = ("code",)

    code = "simulated"
    name = "Simulated vendor"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    vendor = factory.SubFactory(VendorFactory)
    name = factory.Sequence(lambda n: f"Gift Card {n}")
    brand = "Acme"
    kind = ProductKind.GIFT_CARD
    currency = "USD"
    denominations = ["10.00", "25.00", "50.00"]
    delivery_type = DeliveryType.CODE_WITH_PIN
    bulk_limit = 10


class VoucherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Voucher

    product = factory.SubFactory(ProductFactory)
    denomination = Decimal("25.00")
    card_number = factory.Sequence(lambda n: f"4111{n:012d}")
    pin_code = factory.Sequence(lambda n: f"{n % 10000:04d}")
    card_last4 = factory.LazyAttribute(lambda v: v.card_number[-4:])
    fingerprint = factory.LazyAttribute(lambda v: _fingerprint(v.card_number))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=365))
    status = InventoryStatus.AVAILABLE
    source = VoucherSource.IMPORT


def _fingerprint(value: str) -> str:
    return fingerprint(value)


class OrderFactory(factory.django.DjangoModelFactory):
    """An order row as stored (no money moved): for read-side tests."""

    class Meta:
        model = Order

    client = factory.SubFactory(ClientFactory)
    product = factory.SubFactory(ProductFactory)
    reference_code = factory.Sequence(lambda n: f"ORD-{n:06d}")
    product_name = factory.LazyAttribute(lambda o: o.product.name)
    product_brand = factory.LazyAttribute(lambda o: o.product.brand)
    product_kind = factory.LazyAttribute(lambda o: o.product.kind)
    delivery_type = factory.LazyAttribute(lambda o: o.product.delivery_type)
    currency = factory.LazyAttribute(lambda o: o.product.currency)
    denomination = Decimal("25.00")
    quantity = 1
    face_value = factory.LazyAttribute(lambda o: o.denomination * o.quantity)
    amount = factory.LazyAttribute(lambda o: o.face_value)
    # Placing sets it from the wallet paid from; one of the product's currency here.
    wallet_currency = factory.LazyAttribute(lambda o: o.currency)
    status = OrderStatus.PLACED
    sub_status = SubStatus.INITIAL
    customer_name = "Ada Lovelace"
    customer_email = "ada@example.com"


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    position = factory.Sequence(lambda n: n + 1)


class ImportBatchFactory(factory.django.DjangoModelFactory):
    """An import batch as stored, with no file behind it."""

    class Meta:
        model = ImportBatch

    product = factory.SubFactory(ProductFactory)
    file_name = factory.Sequence(lambda n: f"codes-{n}.csv")
    file_sha256 = "0" * 64


class WalletCreditRequestFactory(factory.django.DjangoModelFactory):
    """A top-up waiting for a second approver (no money moved yet)."""

    class Meta:
        model = WalletCreditRequest

    wallet = factory.SubFactory(WalletFactory)
    kind = WalletCreditRequest.Kind.TOP_UP
    amount = Decimal("5000.00")
    reason = "Large prepayment"
    requested_by = factory.SubFactory(UserFactory)


# --- Stock ------------------------------------------------------------------------


def stock(product: Product, count: int, *, denomination: str = "25.00", **kw: Any) -> list[Voucher]:
    """`count` AVAILABLE vouchers of `product` in one denomination."""
    return VoucherFactory.create_batch(
        count, product=product, denomination=Decimal(denomination), **kw
    )


def add_stock(product: Product, denomination: str, units: int) -> list[Voucher]:
    return stock(product, units, denomination=denomination)


def expiring_in(days: int) -> Any:
    return timezone.now() + timedelta(days=days)


# --- refundable_order ---------------------------------------------------------------

_names = itertools.count(1)


def refundable_order(
    *, amount: str = "25.00", currency: str = "USD", client=None, placed_days_ago: int = 0
) -> Order:
    """A real order (wallet debited), failed at the vendor, its refund awaiting approval."""
    system = Actor.system("test")
    if client is None:
        client, _wallet, _issued = client_create(
            name=f"Finance Client {next(_names)}",
            currency=currency,
            balance="10000.00",
            actor=system,
        )
    product = ProductFactory(currency=currency, denominations=[amount])
    order = order_create(
        client=client,
        actor=system,
        product_id=product.pk,
        denomination=amount,
        quantity=1,
        reference_code=f"FIN-{next(_names)}",
        customer=Customer(name="Ada", email="ada@example.com"),
    ).order
    order_transition(
        order_id=order.pk, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING, actor=system
    )
    order_transition(
        order_id=order.pk,
        status=OrderStatus.FAILED,
        sub_status=SubStatus.VENDOR_ORDER_FAILED,
        actor=system,
    )
    Order.objects.filter(pk=order.pk).update(
        refund_status=RefundStatus.NOT_REFUNDED,
        refund_amount=order.wallet_amount,
        placed_at=timezone.now() - timedelta(days=placed_days_ago),
    )
    order.refresh_from_db()
    return order


# --- deliver_order (API tests; reusable) ---------------------------------------


def deliver_order(order: Order, vouchers: list[Voucher]) -> Order:
    """Deliver `vouchers` on an order's items without the fulfilment engine.

    One voucher per item in position order; with fewer vouchers than units the
    rest of the items fail and the order ends PARTIALLY_DELIVERED/PARTIAL,
    otherwise DELIVERED/INVENTORY_FULFILLED. Moves go through order_transition.
    """
    now = timezone.now()
    actor = Actor.system("test deliver_order")
    items = list(order.items.order_by("position"))
    if not items:
        items = [
            OrderItem.objects.create(order=order, position=n) for n in range(1, order.quantity + 1)
        ]
    for position, item in enumerate(items):
        if position < len(vouchers):
            voucher = vouchers[position]
            voucher.status = InventoryStatus.DELIVERED
            voucher.delivered_at = now
            voucher.save(update_fields=["status", "delivered_at", "updated_at"])
            item.voucher, item.status, item.delivered_at = voucher, ItemStatus.DELIVERED, now
        else:
            item.status = ItemStatus.FAILED
        item.save()
    order_transition(
        order_id=order.pk, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING, actor=actor
    )
    if len(vouchers) >= len(items):
        target = (OrderStatus.DELIVERED, SubStatus.INVENTORY_FULFILLED)
    else:
        target = (OrderStatus.PARTIALLY_DELIVERED, SubStatus.PARTIAL)
    return order_transition(order_id=order.pk, status=target[0], sub_status=target[1], actor=actor)


def delivered_webhook(
    order: Order, *, url: str, first_status: int = 503, durations: tuple[int, int] = (120, 80)
) -> WebhookDelivery:
    """A webhook of `order` delivered on the second attempt (first answered `first_status`)."""
    endpoint = WebhookEndpoint.objects.create(client=order.client, url=url, secret="whsec")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        order=order,
        event="order.delivered",
        payload={},
        status=WebhookDeliveryStatus.DELIVERED,
        attempts=2,
    )
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=first_status, duration_ms=durations[0]
    )
    WebhookAttempt.objects.create(delivery=delivery, status_code=200, duration_ms=durations[1])
    return delivery
