"""How an order is shown outside the system: in /api/v1 answers and in webhooks.

The API's order schemas and the webhook payload are the same classes, so a
field means and looks the same in both (money as text with two decimals,
timestamps RFC 3339 in UTC with a "Z", enums in canonical UPPERCASE) and the
two cannot drift. The schemas read model objects: the field types below turn
Decimals and datetimes into text, resolvers name the few fields a column does
not hold. Internal enums (classification, link type, inventory status) have no
field here at all.

This module depends on the models, the rules and ninja only, so that both the
API (orders/api/) and the services (services/webhooks.py) import it without
the services reaching up into the API layer. The schemas are described by
comments, not docstrings, which would change the OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, Self

from ninja import Field, Schema
from pydantic import BeforeValidator

from orders import rules
from orders.enums import (
    DeliveryMethod,
    DeliveryTime,
    DeliveryType,
    GiftLinkStatus,
    ItemStatus,
    OrderStatus,
    ProductKind,
    RechargeStatus,
    SubStatus,
    WalletEntryKind,
)

if TYPE_CHECKING:
    from orders.models import Order


class PlainVoucher(Protocol):
    """What a voucher's answer reads: the reveal service's RevealedVoucher."""

    @property
    def card_number(self) -> str | None: ...

    @property
    def pin_code(self) -> str | None: ...

    @property
    def claim_url(self) -> str | None: ...

    @property
    def voucher_reference_number(self) -> str | None: ...

    @property
    def expires_at(self) -> datetime | None: ...


class ItemLike(Protocol):
    """What an item's answer reads: an OrderItem, or the order selector's ItemRow."""

    @property
    def position(self) -> int: ...

    @property
    def status(self) -> str: ...

    @property
    def recharge_status(self) -> str: ...


def rfc3339(value: datetime | None) -> str | None:
    """A timestamp as the API writes it: UTC, whole seconds, "Z"."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money_text(value: object) -> object:
    return rules.money_text(value) if isinstance(value, Decimal) else value


def _timestamp_text(value: object) -> object:
    return rfc3339(value) if isinstance(value, datetime) else value


# --- Field types -----------------------------------------------------------------
# An amount read from the database (a Decimal) is written as "25.00", a datetime
# as "2024-01-15T10:30:00Z"; what is already text is checked as it is.
Money = Annotated[
    str,
    BeforeValidator(_money_text),
    Field(pattern=rules.MONEY_PATTERN, examples=["25.00"]),
]
Timestamp = Annotated[
    str,
    BeforeValidator(_timestamp_text),
    Field(json_schema_extra={"format": "date-time"}, examples=["2024-01-15T10:30:00Z"]),
]


def _choices(enum: Any) -> Any:
    return Literal[tuple(enum.values)]


if TYPE_CHECKING:  # the checker sees plain strings; pydantic sees the exact values
    type OrderStatusOut = str
    type SubStatusOut = str
    type DeliveryTimeOut = str
    type DeliveryTypeOut = str
    type DeliveryMethodOut = str
    type GiftLinkStatusOut = str
    type ProductKindOut = str
    type ItemStatusOut = str
    type RechargeStatusOut = str
    type WalletEntryKindOut = str
else:
    OrderStatusOut = _choices(OrderStatus)
    SubStatusOut = _choices(SubStatus)
    DeliveryTimeOut = _choices(DeliveryTime)
    DeliveryTypeOut = _choices(DeliveryType)
    DeliveryMethodOut = _choices(DeliveryMethod)
    GiftLinkStatusOut = _choices(GiftLinkStatus)
    ProductKindOut = _choices(ProductKind)
    ItemStatusOut = _choices(ItemStatus)
    RechargeStatusOut = _choices(RechargeStatus)
    WalletEntryKindOut = _choices(WalletEntryKind)


def _wallet_currency(order: Order) -> str:
    # Orders placed before wallets could differ from the product carry no wallet currency.
    return order.wallet_currency or order.currency


# --- Orders ------------------------------------------------------------------------


# One delivered voucher, read from the reveal service's RevealedVoucher.
class VoucherOut(Schema):
    card_number: str | None
    pin_code: str | None = Field(description="Only for CODE_WITH_PIN products, else null.")
    claim_url: str | None
    voucher_reference_number: str | None
    expires_at: Timestamp | None


class CustomerOut(Schema):
    name: str
    email: str
    phone: str


def _gift_link(item: ItemLike) -> Any:
    # The order selector's ItemRow carries its unit's gift link (or None); an
    # OrderItem just placed has none yet.
    return getattr(item, "link", None)


class OrderItemOut(Schema):
    position: int
    status: ItemStatusOut
    recharge_status: RechargeStatusOut | None = Field(description="Mobile top-ups only.")
    claim_status: GiftLinkStatusOut | None = Field(
        description="LINK orders: the unit's gift link, UNCLAIMED until its recipient "
        "reveals the code, then CLAIMED (EXPIRED, REVOKED: it can no longer be opened); "
        "null for CODE orders and units without a link."
    )
    claimed_at: Timestamp | None = Field(
        description="When the recipient first revealed the code (LINK orders)."
    )

    @staticmethod
    def resolve_recharge_status(item: ItemLike) -> str | None:
        return item.recharge_status or None

    @staticmethod
    def resolve_claim_status(item: ItemLike) -> str | None:
        link = _gift_link(item)
        return None if link is None else str(link.status)

    @staticmethod
    def resolve_claimed_at(item: ItemLike) -> str | None:
        link = _gift_link(item)
        return None if link is None else rfc3339(link.claimed_at)


# An order without its vouchers: the order list's rows and the webhooks' base.
class OrderSummaryOut(Schema):
    id: int
    reference_code: str
    transaction_id: int | None
    amount: Money
    currency: str
    product_id: int
    denomination: Money
    quantity: int
    discount: Money
    status: OrderStatusOut
    sub_status: SubStatusOut
    placed_at: Timestamp
    delivery_method: DeliveryMethodOut


# One order with its delivered vouchers, in the order of the spec's fields.
#
# Build it with `OrderDetailOut.of(...)`: the vouchers (revealed and audited by
# the reveal service) and the live delivery time are not columns of the order;
# `items` (when given) are the order's items already read, else `order.items`.
# `vouchers_redacted`: read with a credential (or token) without the
# vouchers:read scope, so each voucher's secret fields are null.
# `order_detail_json` writes the same document piece by piece, for an order
# too large to hold decrypted at once.
class OrderDetailOut(Schema):
    id: int
    reference_code: str
    transaction_id: int | None = Field(description="The wallet entry that paid for the order.")
    amount: Money
    product_id: int
    denomination: Money
    quantity: int
    discount: Money
    vouchers: list[VoucherOut] = Field(
        description="Delivered vouchers (DELIVERED / PARTIALLY_DELIVERED orders), else []. "
        "For a LINK order: one gift link per delivered unit, no code."
    )
    status: OrderStatusOut
    placed_at: Timestamp
    sub_status: SubStatusOut
    currency: str
    delivery_time: DeliveryTimeOut
    delivery_method: DeliveryMethodOut = Field(
        description="CODE: vouchers carry their codes. LINK: each voucher carries only "
        "`claim_url` (our hosted gift link) and `expires_at` (the link's expiry); "
        "card_number, pin_code and voucher_reference_number are null."
    )
    face_value: Money
    fees: Money
    taxes: Money
    wallet_currency: str
    wallet_amount: Money
    customer: CustomerOut
    items: list[OrderItemOut]
    vouchers_redacted: bool = Field(
        description=(
            "true: read without the vouchers:read scope. Each delivered voucher is "
            "listed, but card_number, pin_code, claim_url and voucher_reference_number "
            "are null (withheld, not missing); false: nothing withheld."
        )
    )

    @classmethod
    def of(
        cls,
        order: Order,
        *,
        vouchers: Sequence[PlainVoucher],
        delivery_time: DeliveryTime,
        items: Sequence[ItemLike] | None = None,
        vouchers_redacted: bool = False,
    ) -> Self:
        context = {
            "vouchers": vouchers,
            "delivery_time": delivery_time,
            "items": items,
            "vouchers_redacted": vouchers_redacted,
        }
        return cls.model_validate(order, context=context)

    @staticmethod
    def resolve_vouchers_redacted(order: Order, context: dict[str, Any]) -> bool:
        return bool(context.get("vouchers_redacted", False))

    @staticmethod
    def resolve_vouchers(order: Order, context: dict[str, Any]) -> Sequence[PlainVoucher]:
        return context["vouchers"]

    @staticmethod
    def resolve_items(order: Order, context: dict[str, Any]) -> Iterable[ItemLike]:
        items = context.get("items")
        return order.items.all() if items is None else items

    @staticmethod
    def resolve_delivery_time(order: Order, context: dict[str, Any]) -> DeliveryTime:
        return context["delivery_time"]

    @staticmethod
    def resolve_wallet_currency(order: Order) -> str:
        return _wallet_currency(order)

    @staticmethod
    def resolve_customer(order: Order) -> dict[str, str]:
        return {
            "name": order.customer_name,
            "email": order.customer_email,
            "phone": order.customer_phone,
        }


def _json(value: Any) -> str:
    # As the API's JSON renderer writes it (json.dumps' default separators).
    return json.dumps(value)


def _members(fields: dict[str, Any]) -> str:
    return ", ".join(f"{_json(name)}: {_json(value)}" for name, value in fields.items())


def _list_members(rows: list[dict[str, Any]]) -> str:
    return _json(rows)[1:-1]  # "a, b": a list's members, as inside the list


# VoucherOut and OrderItemOut of many rows without a validation per row (a
# 10,000-unit order would spend most of its time there). Each gives exactly the
# schema's dump of one row: tests/api/test_detail_large_order.py holds them to it.
def voucher_fields(voucher: PlainVoucher) -> dict[str, Any]:
    """VoucherOut's dump of one voucher."""
    return {
        "card_number": voucher.card_number,
        "pin_code": voucher.pin_code,
        "claim_url": voucher.claim_url,
        "voucher_reference_number": voucher.voucher_reference_number,
        "expires_at": rfc3339(voucher.expires_at),
    }


def item_fields(item: ItemLike) -> dict[str, Any]:
    """OrderItemOut's dump of one item."""
    return {
        "position": item.position,
        "status": item.status,
        "recharge_status": OrderItemOut.resolve_recharge_status(item),
        "claim_status": OrderItemOut.resolve_claim_status(item),
        "claimed_at": OrderItemOut.resolve_claimed_at(item),
    }


def order_fields(
    order: Order, *, delivery_time: DeliveryTime, vouchers_redacted: bool = False
) -> dict[str, Any]:
    """OrderDetailOut's dump of an order without its vouchers and items (both []),
    written straight from the columns: the detail of every poll, without a
    validation per answer. tests/api/test_detail_large_order.py holds it to the
    schema's dump."""
    money = rules.money_text
    return {
        "id": order.pk,
        "reference_code": order.reference_code,
        "transaction_id": order.transaction_id,
        "amount": money(order.amount),
        "product_id": order.product_id,
        "denomination": money(order.denomination),
        "quantity": order.quantity,
        "discount": money(order.discount),
        "vouchers": [],
        "status": str(order.status),
        "placed_at": rfc3339(order.placed_at),
        "sub_status": str(order.sub_status),
        "currency": order.currency,
        "delivery_time": str(delivery_time),
        "delivery_method": str(order.delivery_method),
        "face_value": money(order.face_value),
        "fees": money(order.fees),
        "taxes": money(order.taxes),
        "wallet_currency": _wallet_currency(order),
        "wallet_amount": money(order.wallet_amount),
        "customer": OrderDetailOut.resolve_customer(order),
        "items": [],
        "vouchers_redacted": vouchers_redacted,
    }


def order_detail_json(
    order: Order,
    *,
    chunks: Iterable[tuple[Sequence[ItemLike], Sequence[PlainVoucher]]],
    delivery_time: DeliveryTime,
    vouchers_redacted: bool = False,
) -> Iterator[str]:
    """OrderDetailOut's JSON, byte for byte as the API renders it, written as the
    (items, vouchers) chunks come: each chunk's vouchers are written and dropped;
    only the items' short JSON is kept until the `items` field (after `vouchers`)."""
    fields = order_fields(order, delivery_time=delivery_time, vouchers_redacted=vouchers_redacted)
    names = list(fields)
    at_vouchers, at_items = names.index("vouchers"), names.index("items")
    before = {name: fields[name] for name in names[:at_vouchers]}
    between = {name: fields[name] for name in names[at_vouchers + 1 : at_items]}
    after = {name: fields[name] for name in names[at_items + 1 :]}
    yield "{" + _members(before) + (", " if before else "") + '"vouchers": ['
    items: list[str] = []
    written = False
    for chunk_items, chunk_vouchers in chunks:
        if chunk_items:
            items.append(_list_members([item_fields(item) for item in chunk_items]))
        if chunk_vouchers:
            text = _list_members([voucher_fields(voucher) for voucher in chunk_vouchers])
            yield f", {text}" if written else text
            written = True
    yield (
        "]"
        + (", " + _members(between) if between else "")
        + ', "items": ['
        + ", ".join(items)
        + "]"
        + (", " + _members(after) if after else "")
        + "}"
    )


# What a webhook says about an order: the API's summary of it plus what an
# event reports (units delivered, the wallet side, the refund). Never a voucher.
class OrderWebhookOut(OrderSummaryOut):
    delivered_count: int
    wallet_amount: Money
    wallet_currency: str
    refund_amount: Money
    delivered_at: Timestamp | None
    refunded_at: Timestamp | None
    updated_at: Timestamp

    @staticmethod
    def resolve_delivered_count(order: Order) -> int:
        return order.items.filter(status=ItemStatus.DELIVERED).count()

    @staticmethod
    def resolve_wallet_currency(order: Order) -> str:
        return _wallet_currency(order)
