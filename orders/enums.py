"""Every enum of the API spec, plus the internal ones the domain needs.

Values are canonical UPPERCASE. `Enum.parse(value)` accepts any case and the
documented aliases (REALTIME -> INSTANT) and raises InvalidEnumValue naming
the valid values. `Enum.public` says whether values may appear in /api/v1
responses; internal enums never do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from django.db import models

from orders.errors import InvalidEnumValue

# Aliases accepted on input, per enum class name: alias -> canonical value.
_ALIASES: dict[str, dict[str, str]] = {
    "DeliveryTime": {"REALTIME": "INSTANT"},
}
# Enums marked Internal in the spec (or internal to the domain).
_INTERNAL: set[str] = {
    "Classification",
    "LinkType",
    "InventoryStatus",
    "RefundStatus",
    "VoucherSource",
    "ImportBatchStatus",
    "WebhookDeliveryStatus",
    "DeliveryEmailStatus",
}


class SpecChoices(models.TextChoices):
    """TextChoices with case-insensitive parsing and an exposure flag."""

    @classmethod
    def parse(cls, value: object, *, field: str | None = None) -> Self:
        """Return the member for `value` in any case, or raise InvalidEnumValue."""
        if isinstance(value, cls):
            return value
        name = field or _snake(cls.__name__)
        if not isinstance(value, str) or not value.strip():
            raise InvalidEnumValue(field=name, value=value, valid=cls.canonical_values())
        key = value.strip().upper()
        key = _ALIASES.get(cls.__name__, {}).get(key, key)
        try:
            return cls(key)
        except ValueError:
            raise InvalidEnumValue(field=name, value=value, valid=cls.canonical_values()) from None

    @classmethod
    def canonical_values(cls) -> list[str]:
        return [str(member.value) for member in cls]

    @classmethod
    def is_public(cls) -> bool:
        return cls.__name__ not in _INTERNAL


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


class OrderStatus(SpecChoices):
    PLACED = "PLACED", "Placed"
    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    PARTIALLY_DELIVERED = "PARTIALLY_DELIVERED", "Partially delivered"
    CANCELLED = "CANCELLED", "Cancelled"
    FAILED = "FAILED", "Failed"


class SubStatus(SpecChoices):
    INITIAL = "INITIAL", "Initial"
    PROCESSING = "PROCESSING", "Processing"
    PARTIAL = "PARTIAL", "Partial"
    COMPLETED = "COMPLETED", "Completed"
    VENDOR_ORDER_PENDING = "VENDOR_ORDER_PENDING", "Vendor order pending"
    VENDOR_ORDER_CREATED = "VENDOR_ORDER_CREATED", "Vendor order created"
    VENDOR_ORDER_FAILED = "VENDOR_ORDER_FAILED", "Vendor order failed"
    VENDOR_VOUCHER_FETCHED = "VENDOR_VOUCHER_FETCHED", "Vendor voucher fetched"
    INVENTORY_FULFILLED = "INVENTORY_FULFILLED", "Inventory fulfilled"
    PENDING_REPROCESS = "PENDING_REPROCESS", "Pending reprocess"
    REPROCESS_EXPIRED = "REPROCESS_EXPIRED", "Reprocess expired"
    GV_LINK_PENDING = "GV_LINK_PENDING", "Gift voucher link pending"
    GV_LINK_CLAIMED = "GV_LINK_CLAIMED", "Gift voucher link claimed"
    GV_LINK_UNCLAIMED = "GV_LINK_UNCLAIMED", "Gift voucher link unclaimed"
    BULK_LIMIT_EXCEEDED = "BULK_LIMIT_EXCEEDED", "Bulk limit exceeded"
    REFUNDED = "REFUNDED", "Refunded"
    NOT_REFUNDED = "NOT_REFUNDED", "Not refunded"
    RECONCILED = "RECONCILED", "Reconciled"


class DeliveryTime(SpecChoices):
    INSTANT = "INSTANT", "Instant"
    DELAYED = "DELAYED", "Delayed"


class DeliveryType(SpecChoices):
    CODE_WITH_PIN = "CODE_WITH_PIN", "Code with PIN"
    URL = "URL", "Redemption URL"


class Classification(SpecChoices):
    OPEN_LOOP = "OPEN_LOOP", "Open loop"
    CLOSED_LOOP = "CLOSED_LOOP", "Closed loop"
    SEMI_OPEN = "SEMI_OPEN", "Semi open"
    SEMI_CLOSE = "SEMI_CLOSE", "Semi close"


class LinkType(SpecChoices):
    PUBLIC = "PUBLIC", "Public"
    PROTECTED = "PROTECTED", "Protected"


class DeliveryMethod(SpecChoices):
    """How an order's vouchers reach the recipient (public: `delivery_method`).

    CODE: the partner reads the codes from the API. LINK: the partner gets one
    hosted gift link per unit; only the recipient who opens it sees the code."""

    CODE = "CODE", "Codes through the API"
    LINK = "LINK", "Gift voucher links"


class GiftLinkStatus(SpecChoices):
    """Claim state of one unit's gift link (public: `items[].claim_status`).

    EXPIRED and REVOKED end a link: it answers 410 and shows nothing."""

    UNCLAIMED = "UNCLAIMED", "Not claimed yet"
    CLAIMED = "CLAIMED", "Claimed"
    EXPIRED = "EXPIRED", "Expired"
    REVOKED = "REVOKED", "Revoked"


class InventoryStatus(SpecChoices):
    AVAILABLE = "AVAILABLE", "Available"
    ALLOCATED = "ALLOCATED", "Allocated"
    DELIVERED = "DELIVERED", "Delivered"
    COMPLETED = "COMPLETED", "Completed"
    BLOCKED = "BLOCKED", "Blocked"
    REVOKED = "REVOKED", "Revoked"


class RechargeStatus(SpecChoices):
    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    RECHARGED = "RECHARGED", "Recharged"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class ProductKind(SpecChoices):
    GIFT_CARD = "GIFT_CARD", "Gift card"
    MOBILE_TOPUP = "MOBILE_TOPUP", "Mobile top-up"
    DIGITAL_SERVICE = "DIGITAL_SERVICE", "Digital service"


class PaymentMethod(SpecChoices):
    WALLET = "WALLET", "Wallet"


class ItemStatus(SpecChoices):
    """Per-unit status of an order item (public: returned in `items`)."""

    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


class RefundStatus(SpecChoices):
    NONE = "NONE", "Nothing to refund"
    NOT_REFUNDED = "NOT_REFUNDED", "Not refunded"
    REFUNDED = "REFUNDED", "Refunded"


class WalletEntryKind(SpecChoices):
    TOP_UP = "TOP_UP", "Top-up"
    ORDER_DEBIT = "ORDER_DEBIT", "Order debit"
    REFUND = "REFUND", "Refund"
    ADJUSTMENT = "ADJUSTMENT", "Adjustment"


class VoucherSource(SpecChoices):
    IMPORT = "IMPORT", "Imported"
    VENDOR = "VENDOR", "Bought from vendor"


class ImportBatchStatus(SpecChoices):
    VALIDATING = "VALIDATING", "Validating"
    INVALID = "INVALID", "Invalid"
    IMPORTED = "IMPORTED", "Imported"
    QUARANTINED = "QUARANTINED", "Quarantined"


class WebhookDeliveryStatus(SpecChoices):
    PENDING = "PENDING", "Pending"
    DELIVERED = "DELIVERED", "Delivered"
    FAILED = "FAILED", "Failed"


class DeliveryEmailStatus(SpecChoices):
    QUEUED = "QUEUED", "Queued"
    SENT = "SENT", "Sent"
    FAILED = "FAILED", "Failed"


class WebhookEvent(SpecChoices):
    ORDER_DELIVERED = "order.delivered", "Order delivered"
    ORDER_PARTIALLY_DELIVERED = "order.partially_delivered", "Order partially delivered"
    ORDER_FAILED = "order.failed", "Order failed"
    ORDER_REFUNDED = "order.refunded", "Order refunded"

    @classmethod
    def parse(cls, value: object, *, field: str | None = None) -> WebhookEvent:
        if isinstance(value, str):
            value = value.strip().lower()
            try:
                return cls(value)
            except ValueError:
                pass
        raise InvalidEnumValue(field=field or "event", value=value, valid=cls.canonical_values())


class ApiScope(models.TextChoices):
    """What an API credential (and a token issued for it) may do: the one list of
    scopes. Each /api/v1 operation names the one it needs (orders/api/auth.py
    `scoped`); `vouchers:read` decides whether an order read carries voucher
    secrets. Values are lowercase `resource:action`, as partners type them."""

    ORDERS_WRITE = "orders:write", "Place orders"
    ORDERS_READ = "orders:read", "Read orders, products and prices"
    VOUCHERS_READ = "vouchers:read", "Read voucher codes of delivered orders"
    WALLET_READ = "wallet:read", "Read wallet balances and the ledger"
    WEBHOOKS_MANAGE = "webhooks:manage", "Manage webhook endpoints"

    @classmethod
    def parse_many(cls, values: Iterable[object], *, field: str = "scopes") -> list[str]:
        """The scopes named in `values` (each exact, lowercase), in this class's
        order and without repeats; an unknown one raises InvalidEnumValue naming
        the valid ones."""
        wanted = set()
        for value in values:
            if not isinstance(value, str) or value.strip() not in cls.values:
                raise InvalidEnumValue(field=field, value=value, valid=cls.values)
            wanted.add(value.strip())
        return [scope for scope in cls.values if scope in wanted]


# Every scope: what a credential gets unless told otherwise.
ALL_API_SCOPES: tuple[str, ...] = tuple(ApiScope.values)


def all_api_scopes() -> list[str]:
    """A new credential's scopes by default (a callable: a JSONField's default)."""
    return list(ALL_API_SCOPES)
