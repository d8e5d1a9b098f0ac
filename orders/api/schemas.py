"""Request and response shapes of /api/v1, and the functions that fill them.

Money is always a string with two decimals; timestamps are RFC 3339 in UTC
with a "Z"; enums are answered in canonical UPPERCASE. Internal enums
(classification, link type, inventory status) have no field here at all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, PlainValidator, StrictInt, WithJsonSchema, field_validator

from orders.enums import (
    DeliveryTime,
    DeliveryType,
    ItemStatus,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    RechargeStatus,
    SubStatus,
    WalletEntryKind,
)

MAX_ID = 2**63 - 1
CENT = Decimal("0.01")
MONEY_PATTERN = r"^-?\d+\.\d{2}$"
DENOMINATION_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"
DENOMINATION_RE = re.compile(DENOMINATION_PATTERN)
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,99}$"

# --- Field types ---------------------------------------------------------------
# Patterns say exactly what the API accepts, so a client (or a fuzzer) that
# follows the document sends nothing the API then refuses for its shape.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x08\x0A-\x1F]*$"
# Spaces anywhere are ignored; then an optional + and 6-15 digits (or nothing).
PHONE_PATTERN = r"^ *((\+ *)?([0-9] *){6,15})?$"
# RFC 3339 in a query string; the handler parses it (any offset up to 23:59).
TimestampQuery = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]


def any_case_pattern(enum: Any, *, listed: bool = False) -> str:
    """A pattern for one value of `enum` in any case (or a comma-separated list)."""

    def any_case(value: str) -> str:
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in value)

    one = "(" + "|".join(any_case(str(v)) for v in enum.values) + ")"
    return f"^{one}?(,{one}?)*$" if listed else f"^{one}$"


def any_case_schema(enum: Any) -> WithJsonSchema:
    """Declares the comma-separated values; the enum's parser checks them and
    names the valid ones in its error."""
    return WithJsonSchema({"type": "string", "pattern": any_case_pattern(enum, listed=True)})


def _plain_text(value: str) -> str:
    if any(ord(ch) < 32 and ch not in "\t" for ch in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text") from None
    return value


def _denomination(value: object) -> str:
    if isinstance(value, float):
        raise ValueError(
            'send denomination as a string like "25.00" (or a whole number): '
            "floats are refused because they cannot hold cents exactly"
        )
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        return str(value)
    if isinstance(value, str) and DENOMINATION_RE.fullmatch(value):
        return value
    raise ValueError('denomination must be an amount like "25.00" (at most 2 decimals)')


Text = Annotated[str, AfterValidator(_plain_text)]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Denomination = Annotated[
    str,
    PlainValidator(_denomination),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DENOMINATION_PATTERN},
                {"type": "integer", "minimum": 0, "maximum": 10**12 - 1},
            ],
            "description": 'Face value of one unit: a string like "25.00" or a whole number. '
            "Floats are refused.",
            "examples": ["25.00"],
        }
    ),
]
# The same amount as a query parameter (always text there): "25", "25.5" or "25.00".
DenominationQuery = Annotated[
    str,
    PlainValidator(_denomination),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DENOMINATION_PATTERN,
            "maxLength": 15,
            "description": 'Face value of one unit, like "25.00".',
        }
    ),
]
Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["25.00"])]
Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2024-01-15T10:30:00Z"])
]


def _choices(enum: Any) -> Any:
    return Literal[tuple(enum.values)]


if TYPE_CHECKING:  # the checker sees plain strings; pydantic sees the exact values
    type OrderStatusOut = str
    type SubStatusOut = str
    type DeliveryTimeOut = str
    type DeliveryTypeOut = str
    type ProductKindOut = str
    type ItemStatusOut = str
    type RechargeStatusOut = str
    type WalletEntryKindOut = str
else:
    OrderStatusOut = _choices(OrderStatus)
    SubStatusOut = _choices(SubStatus)
    DeliveryTimeOut = _choices(DeliveryTime)
    DeliveryTypeOut = _choices(DeliveryType)
    ProductKindOut = _choices(ProductKind)
    ItemStatusOut = _choices(ItemStatus)
    RechargeStatusOut = _choices(RechargeStatus)
    WalletEntryKindOut = _choices(WalletEntryKind)


def money_text(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Errors --------------------------------------------------------------------


class ErrorDetail(Schema):
    field: str = Field(examples=["denomination"])
    message: str
    valid: list[str] | None = Field(None, description="Accepted values, for an enum field.")


class ErrorOut(Schema):
    error: str = Field(description="snake_case code", examples=["validation_error"])
    message: str
    details: list[ErrorDetail] | None = Field(
        None, description="For validation_error: one entry per field to fix."
    )


# Every operation that reads a body can refuse it before parsing: too large
# (API_MAX_BODY_BYTES) or not sent as application/json.
BODY_ERRORS: dict[int, type[ErrorOut]] = {413: ErrorOut, 415: ErrorOut}


# --- Auth ----------------------------------------------------------------------


class TokenIn(Schema):
    api_key: str = Field(max_length=100, examples=["sk_live_abc123def456"])
    api_secret: str = Field(max_length=200)


class TokenOut(Schema):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the token expires.")
    expires_at: Timestamp


# --- Orders --------------------------------------------------------------------


class CustomerIn(Schema):
    name: Text = Field("", max_length=200, pattern=PLAIN_TEXT_PATTERN)
    email: Text = Field(
        "", max_length=254, pattern=PLAIN_TEXT_PATTERN, description="An e-mail address, or empty."
    )
    phone: Text = Field("", max_length=32, pattern=PHONE_PATTERN)


class OrderCreateIn(Schema):
    product_id: Id
    denomination: Denomination
    quantity: StrictInt = Field(1, ge=1, le=1_000_000)
    reference_code: str = Field(
        pattern=REFERENCE_PATTERN,
        description="Your unique id for this order; the idempotency key.",
        examples=["ORD-ABC123"],
    )
    customer: CustomerIn | None = None
    payment_method: Text = Field(
        "WALLET",
        max_length=32,
        pattern=any_case_pattern(PaymentMethod),
        description="WALLET (any case).",
        examples=["WALLET"],
    )
    recipient_phone: Text = Field(
        "",
        max_length=32,
        pattern=PHONE_PATTERN,
        description="Mobile top-ups only (required there, refused elsewhere): the number "
        "to recharge.",
    )
    wallet_currency: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{3}$",
        description="Pay from this wallet (default: the product's currency).",
    )

    @field_validator("customer", mode="before")
    @classmethod
    def _customer_is_an_object(cls, value: object) -> object:
        # ninja's Schema reads attributes of anything, so "Ada" or [] would
        # otherwise pass as a customer with every field empty.
        if value is not None and not isinstance(value, dict):
            raise ValueError("customer must be an object with name, email and phone (or null)")
        return value


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


class OrderItemOut(Schema):
    position: int
    status: ItemStatusOut
    recharge_status: RechargeStatusOut | None = Field(description="Mobile top-ups only.")


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
        description="Delivered vouchers (DELIVERED / PARTIALLY_DELIVERED orders), else []."
    )
    status: OrderStatusOut
    placed_at: Timestamp
    sub_status: SubStatusOut
    currency: str
    delivery_time: DeliveryTimeOut
    face_value: Money
    fees: Money
    taxes: Money
    wallet_currency: str
    wallet_amount: Money
    customer: CustomerOut
    items: list[OrderItemOut]


class OrderPageOut(Schema):
    results: list[OrderSummaryOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


# --- Products ------------------------------------------------------------------


class ProductOut(Schema):
    id: int
    name: str
    brand: str
    kind: ProductKindOut
    currency: str
    denominations: list[Money] | None = Field(description="Fixed face values; null for a range.")
    min_denomination: Money | None
    max_denomination: Money | None
    delivery_type: DeliveryTypeOut
    delivery_time: DeliveryTimeOut = Field(
        description="INSTANT when one unit of every listed denomination (of any, for a "
        "range product) is in stock right now; computed live."
    )
    instant_denominations: list[Money] = Field(
        description="Denominations with at least one unit in stock right now."
    )
    bulk_limit: int
    description: str


class ProductListOut(Schema):
    results: list[ProductOut]


class AvailabilityOut(Schema):
    product_id: int
    denomination: Money
    quantity: int
    available: bool = Field(description="Inventory covers this quantity right now.")
    available_units: int
    delivery_time: DeliveryTimeOut


# --- Charges -------------------------------------------------------------------


class ChargesIn(Schema):
    product_id: Id
    denomination: Denomination
    quantity: StrictInt = Field(1, ge=1, le=1_000_000)
    wallet_currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")


class ChargesOut(Schema):
    product_id: int
    denomination: Money
    quantity: int
    currency: str
    face_value: Money
    discount: Money
    fees: Money
    taxes: Money
    total: Money = Field(description="In the product's currency.")
    wallet_currency: str
    exchange_rate: str = Field(examples=["1", "1.08000000"])
    wallet_amount: Money = Field(description="What placing this order takes from the wallet.")
    delivery_time: DeliveryTimeOut


# --- Wallet --------------------------------------------------------------------


class WalletOut(Schema):
    currency: str
    balance: Money
    updated_at: Timestamp


class WalletListOut(Schema):
    wallets: list[WalletOut]


class LedgerEntryOut(Schema):
    id: int
    kind: WalletEntryKindOut
    amount: Money = Field(description="Negative for a debit.")
    balance_after: Money
    currency: str
    order_id: int | None
    created_at: Timestamp
    note: str


class LedgerPageOut(Schema):
    results: list[LedgerEntryOut]
    next: str | None
