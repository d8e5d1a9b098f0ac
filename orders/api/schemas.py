"""Request and response shapes of /api/v1.

Money is always a string with two decimals; timestamps are RFC 3339 in UTC
with a "Z"; enums are answered in canonical UPPERCASE (the field types are in
orders/representations.py, with the order's own shapes, which webhooks share).
Output schemas read the objects the selectors and services return; resolvers
(`resolve_<field>`) name what is not an attribute of them. Internal enums
(classification, link type, inventory status) have no field here at all.
Output schemas are described by comments, not docstrings: a docstring would
become the schema's description in the OpenAPI document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from ninja import Field, Schema
from pydantic import AfterValidator, PlainValidator, StrictInt, WithJsonSchema, field_validator

from orders import rules
from orders.enums import DeliveryMethod, DeliveryTime, PaymentMethod
from orders.representations import (
    DeliveryTimeOut,
    DeliveryTypeOut,
    Money,
    OrderSummaryOut,
    ProductKindOut,
    Timestamp,
    WalletEntryKindOut,
)

if TYPE_CHECKING:
    from orders.api.auth import IssuedToken
    from orders.models import Product, WalletEntry
    from orders.selectors.finance import LedgerPage
    from orders.selectors.paging import Page
    from orders.selectors.webhooks import DeliveryPage
    from orders.services.pricing import Quote

MAX_ID = 2**63 - 1

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
    if isinstance(value, str) and rules.AMOUNT_RE.fullmatch(value):
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
                {"type": "string", "pattern": rules.AMOUNT_PATTERN},
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
            "pattern": rules.AMOUNT_PATTERN,
            "maxLength": 15,
            "description": 'Face value of one unit, like "25.00".',
        }
    ),
]
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
    scopes: list[Annotated[str, Field(max_length=50)]] | None = Field(
        None,
        max_length=20,
        description=(
            "Narrow the token to these scopes (each one the credential holds); "
            "omitted: every scope of the credential."
        ),
        examples=[["orders:read"]],
    )


# Read from an IssuedToken.
class TokenOut(Schema):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds until the token expires.")
    expires_at: Timestamp
    scopes: list[str] = Field(description="The scopes the token carries.")

    @staticmethod
    def resolve_token_type(token: IssuedToken) -> str:
        return "Bearer"


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
        pattern=rules.REFERENCE_PATTERN,
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
    delivery_method: Text = Field(
        "CODE",
        max_length=8,
        pattern=any_case_pattern(DeliveryMethod),
        description="CODE (default): read each voucher's code from GET /orders/{id}. "
        "LINK: each unit is delivered as a hosted gift link (`claim_url`) for you to "
        "pass on; only its recipient sees the code. Any case.",
        examples=["CODE", "LINK"],
    )

    @field_validator("customer", mode="before")
    @classmethod
    def _customer_is_an_object(cls, value: object) -> object:
        # ninja's Schema reads attributes of anything, so "Ada" or [] would
        # otherwise pass as a customer with every field empty.
        if value is not None and not isinstance(value, dict):
            raise ValueError("customer must be an object with name, email and phone (or null)")
        return value


# Read from the order_list selector's Page.
class OrderPageOut(Schema):
    results: list[OrderSummaryOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")

    @staticmethod
    def resolve_results(page: Page) -> list[Any]:
        return page.items

    @staticmethod
    def resolve_next(page: Page) -> str | None:
        return page.next_cursor


# --- Products ------------------------------------------------------------------


def _stock(product: Product, context: dict[str, Any]) -> dict[Decimal, int]:
    stock: dict[int, dict[Decimal, int]] = context["stock"]
    return stock.get(product.pk, {})


# Public fields only: never classification, link type or inventory status.
#
# Build it with `ProductOut.of(...)` (or a list with `ProductListOut.of(...)`):
# the live delivery time needs the stock per denomination, which is not a column.
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

    @classmethod
    def of(cls, product: Product, *, stock: dict[int, dict[Decimal, int]]) -> Self:
        """`stock`: allocatable units per product id and denomination."""
        return cls.model_validate(product, context={"stock": stock})

    @staticmethod
    def resolve_denominations(product: Product) -> list[Decimal] | None:
        return None if product.is_range else product.denomination_list

    @staticmethod
    def resolve_min_denomination(product: Product) -> Decimal | None:
        return product.min_denomination if product.is_range else None

    @staticmethod
    def resolve_max_denomination(product: Product) -> Decimal | None:
        return product.max_denomination if product.is_range else None

    @staticmethod
    def resolve_delivery_time(product: Product, context: dict[str, Any]) -> DeliveryTime:
        return rules.product_delivery_time(product=product, stock=_stock(product, context))

    @staticmethod
    def resolve_instant_denominations(product: Product, context: dict[str, Any]) -> list[Decimal]:
        stock = _stock(product, context)
        if not product.is_range:
            return [value for value in product.denomination_list if stock.get(value, 0) > 0]
        assert product.min_denomination is not None and product.max_denomination is not None
        low, high = product.min_denomination, product.max_denomination
        return sorted(value for value, units in stock.items() if units > 0 and low <= value <= high)


class ProductListOut(Schema):
    results: list[ProductOut]

    @classmethod
    def of(cls, products: list[Product], *, stock: dict[int, dict[Decimal, int]]) -> Self:
        return cls.model_validate({"results": products}, context={"stock": stock})


@dataclass(frozen=True)
class Availability:
    """Allocatable units of one product and denomination against a wanted quantity."""

    product_id: int
    denomination: Decimal
    quantity: int
    available_units: int

    @property
    def delivery_time(self) -> DeliveryTime:
        return rules.delivery_time(stock=self.available_units, units=self.quantity)


# Read from an Availability.
class AvailabilityOut(Schema):
    product_id: int
    denomination: Money
    quantity: int
    available: bool = Field(description="Inventory covers this quantity right now.")
    available_units: int
    delivery_time: DeliveryTimeOut

    @staticmethod
    def resolve_available(availability: Availability) -> bool:
        return availability.delivery_time == DeliveryTime.INSTANT


# --- Charges -------------------------------------------------------------------


class ChargesIn(Schema):
    product_id: Id
    denomination: Denomination
    quantity: StrictInt = Field(1, ge=1, le=1_000_000)
    wallet_currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")


# Read from the pricing service's Quote.
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

    @staticmethod
    def resolve_product_id(quote: Quote) -> int:
        return quote.product.pk

    @staticmethod
    def resolve_exchange_rate(quote: Quote) -> str:
        text = format(quote.exchange_rate, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text


# --- Wallet --------------------------------------------------------------------


class WalletOut(Schema):
    currency: str
    balance: Money
    updated_at: Timestamp


class WalletListOut(Schema):
    wallets: list[WalletOut]


# Read from a WalletEntry (with its wallet).
class LedgerEntryOut(Schema):
    id: int
    kind: WalletEntryKindOut
    amount: Money = Field(description="Negative for a debit.")
    balance_after: Money
    currency: str
    order_id: int | None
    created_at: Timestamp
    note: str

    @staticmethod
    def resolve_currency(entry: WalletEntry) -> str:
        return entry.wallet.currency


# Read from the wallet_ledger selector's LedgerPage.
class LedgerPageOut(Schema):
    results: list[LedgerEntryOut]
    next: str | None

    @staticmethod
    def resolve_results(page: LedgerPage) -> list[Any]:
        return page.entries

    @staticmethod
    def resolve_next(page: LedgerPage) -> str | None:
        return page.next_cursor


# --- Webhooks --------------------------------------------------------------------


class WebhookEndpointIn(Schema):
    url: str = Field(
        max_length=500,
        examples=["https://hooks.example.com/starship"],
        description="https:// to a public address (private networks are refused).",
    )
    events: list[Annotated[str, Field(max_length=40)]] = Field(
        min_length=1, max_length=20, examples=[["order.delivered", "order.failed"]]
    )


# Read from a WebhookEndpoint; never its secret.
class WebhookEndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    is_active: bool
    created_at: Timestamp


class WebhookEndpointCreatedOut(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (whsec_…): shown here once, never again.",
        examples=["whsec_3q2-7w…"],
    )


class WebhookEndpointListOut(Schema):
    results: list[WebhookEndpointOut]


class WebhookSecretOut(Schema):
    id: int
    secret: str = Field(description="The new signing secret: shown here once, never again.")


class WebhookDeliveryQueuedOut(Schema):
    delivery_id: int
    status: Literal["PENDING"] = "PENDING"


# Read from a WebhookDelivery annotated with `last_error`; never its payload.
class WebhookDeliveryOut(Schema):
    id: int
    event: str
    order_id: int | None = Field(description="null for a webhook.test event.")
    status: Literal["PENDING", "DELIVERED", "FAILED"]
    attempts: int = Field(description="Attempts since the delivery was last queued.")
    last_status_code: int | None
    last_error: str | None = Field(description="The last attempt's error; null if none.")
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None

    @staticmethod
    def resolve_last_error(delivery: Any) -> str | None:
        return getattr(delivery, "last_error", None) or None


class WebhookDeliveryPageOut(Schema):
    results: list[WebhookDeliveryOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")

    @staticmethod
    def resolve_results(page: DeliveryPage) -> list[Any]:
        return list(page.deliveries)

    @staticmethod
    def resolve_next(page: DeliveryPage) -> str | None:
        return page.next_cursor
