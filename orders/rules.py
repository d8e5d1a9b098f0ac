"""Order rules: each business rule of orders, stock and money, written once.

Services, selectors, the API, the dashboard, the reconciliation SQL and
``seed_demo`` read these names; none of them restates a rule. Changing which
orders are refundable, what counts as allocatable stock or how a reference
code looks is a change to one line here.

Only pure definitions live here (sets of statuses, predicates, Q objects,
arithmetic); nothing reads or writes the database by itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from django.db.models import Q
from django.utils import timezone

from orders.enums import (
    DeliveryTime,
    ImportBatchStatus,
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    ProductKind,
    RechargeStatus,
    SubStatus,
)


class DenominatedProduct(Protocol):
    """What the delivery-time rule reads of a product (orders.models.Product)."""

    @property
    def is_range(self) -> bool: ...

    @property
    def min_denomination(self) -> Decimal | None: ...

    @property
    def max_denomination(self) -> Decimal | None: ...

    @property
    def denomination_list(self) -> list[Decimal]: ...


class ScannedBatch(Protocol):
    """What the import rule reads of a voucher batch (orders.models.ImportBatch)."""

    @property
    def status(self) -> str: ...

    @property
    def error_count(self) -> int: ...

    @property
    def row_count(self) -> int: ...


# --- Money --------------------------------------------------------------------

# Every amount is kept and shown in cents.
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# A money amount as the API writes it: "-12.50", "0.00".
MONEY_PATTERN = r"^-?\d+\.\d{2}$"
# An amount as a client or a CSV may write it: up to 12 digits and 2 decimals.
AMOUNT_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"
AMOUNT_RE = re.compile(AMOUNT_PATTERN)


def cents(value: Decimal) -> Decimal:
    """`value` rounded half-up to the cent."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def in_cents(value: Decimal) -> bool:
    """Whether `value` is a whole number of cents (no third decimal)."""
    return value == cents(value)


def money_text(value: Decimal) -> str:
    """An amount as the API writes it: always two decimals ("25.00")."""
    return str(Decimal(value).quantize(CENT))


def summed_cents(total: object) -> Decimal:
    """A database SUM of amounts, in cents: NULL (nothing summed) is zero, and
    SQLite sums decimals as floats, so the total is rounded to the cent."""
    return cents(Decimal(str(total or 0)))


# --- Reference codes ------------------------------------------------------------

# A client's own reference for an order: unique per client, 1-100 characters.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,99}$"
REFERENCE_RE = re.compile(REFERENCE_PATTERN)

# --- Order size -----------------------------------------------------------------

# The largest bulk limit a product may have: the most units one order can hold.
# Placing, allocating and recording an order are set-based (no statement per
# unit), so an order of this size costs the same statements as one of 1 unit.
MAX_BULK_LIMIT = 10_000

# --- Order statuses -------------------------------------------------------------

# Not finished yet: fulfilment may still deliver, an agent may still cancel.
OPEN_STATUSES = frozenset({OrderStatus.PLACED, OrderStatus.PENDING})
# Finished: nothing about the order's delivery changes any more.
TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.DELIVERED,
        OrderStatus.PARTIALLY_DELIVERED,
        OrderStatus.CANCELLED,
        OrderStatus.FAILED,
    }
)
# Finished with units undelivered: their value goes back to the wallet.
REFUNDABLE_STATUSES = frozenset(
    {OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.PARTIALLY_DELIVERED}
)
# Sub-statuses that mean "went through the vendor": the delivery time DELAYED.
VENDOR_SUB_STATUSES = (
    SubStatus.VENDOR_ORDER_PENDING,
    SubStatus.VENDOR_ORDER_CREATED,
    SubStatus.VENDOR_VOUCHER_FETCHED,
    SubStatus.VENDOR_ORDER_FAILED,
    SubStatus.PENDING_REPROCESS,
    SubStatus.REPROCESS_EXPIRED,
)


# The sub-statuses of a fulfilment run under way; one stuck there (its lease ran
# out) may be retried.
IN_FLIGHT_SUB_STATUSES = frozenset(
    {
        SubStatus.PROCESSING,
        SubStatus.VENDOR_ORDER_PENDING,
        SubStatus.VENDOR_ORDER_CREATED,
        SubStatus.VENDOR_VOUCHER_FETCHED,
    }
)
# A PENDING order an agent may send through fulfilment again.
RETRYABLE_SUB_STATUSES = (
    frozenset({SubStatus.PENDING_REPROCESS, SubStatus.BULK_LIMIT_EXCEEDED}) | IN_FLIGHT_SUB_STATUSES
)


def status_values(statuses: frozenset[OrderStatus] | tuple[OrderStatus, ...]) -> list[str]:
    """The statuses as the strings a query filters on, in a stable order."""
    return sorted(str(status) for status in statuses)


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


def is_refundable(status: str) -> bool:
    return status in REFUNDABLE_STATUSES


def is_retryable(*, status: str, sub_status: str) -> bool:
    """PLACED, or PENDING waiting for a retry, for an admin, or stuck in a run."""
    return status == OrderStatus.PLACED or (
        status == OrderStatus.PENDING and sub_status in RETRYABLE_SUB_STATUSES
    )


def progressed_items_q() -> Q:
    """Items that something already happened to: a voucher allocated, a unit
    delivered or a top-up sent. An order with any of them cannot be cancelled."""
    return (
        Q(voucher__isnull=False)
        | Q(status=ItemStatus.DELIVERED)
        | Q(recharge_status__in=[RechargeStatus.DELIVERED, RechargeStatus.RECHARGED])
    )


# --- Refunds --------------------------------------------------------------------


def prorata(*, charged: Decimal, undelivered: int, quantity: int) -> Decimal:
    """What is owed for `undelivered` of `quantity` units that cost `charged`:
    charged × undelivered / quantity, half-up to the cent; exact at the ends
    (the full amount when nothing was delivered, so no cent is lost)."""
    if undelivered <= 0:
        return ZERO
    if undelivered >= quantity:
        return charged.quantize(CENT)
    return cents(charged * Decimal(undelivered) / Decimal(quantity))


# --- Stock ------------------------------------------------------------------------


def allocatable_q(*, now: datetime | None = None, prefix: str = "") -> Q:
    """Vouchers fulfilment may hand out: AVAILABLE and not expired at `now`.

    `prefix` names the relation from another model ("vouchers__" from Product).
    """
    now = now or timezone.now()
    return Q(**{f"{prefix}status": InventoryStatus.AVAILABLE}) & (
        Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now})
    )


def expired_stock_q(*, now: datetime | None = None) -> Q:
    """AVAILABLE vouchers past their expiry, waiting for an admin or the sweep."""
    now = now or timezone.now()
    return Q(status=InventoryStatus.AVAILABLE, expires_at__lte=now)


def holds_stock(kind: str) -> bool:
    """Whether a product of this kind is ever delivered from voucher stock
    (top-ups go to the operator and never are)."""
    return kind != ProductKind.MOBILE_TOPUP


def is_low_stock(*, available: int, threshold: int) -> bool:
    """A product and denomination is low when fewer units than its threshold
    are allocatable."""
    return available < threshold


def delivery_time(*, stock: int, units: int) -> DeliveryTime:
    """INSTANT when allocatable stock covers the units now, else DELAYED (the vendor)."""
    return DeliveryTime.INSTANT if units > 0 and stock >= units else DeliveryTime.DELAYED


def product_delivery_time(
    *, product: DenominatedProduct, stock: dict[Decimal, int]
) -> DeliveryTime:
    """A product is INSTANT when one unit of every listed denomination is in
    stock, or, for a range product, one unit of any value in the range."""
    if product.is_range:
        low, high = product.min_denomination, product.max_denomination
        assert low is not None and high is not None
        covered = any(units > 0 and low <= value <= high for value, units in stock.items())
        return DeliveryTime.INSTANT if covered else DeliveryTime.DELAYED
    values = product.denomination_list
    covered = bool(values) and all(stock.get(value, 0) > 0 for value in values)
    return DeliveryTime.INSTANT if covered else DeliveryTime.DELAYED


# A delivered LINK order's sub-status tells its links' claim state, not its route.
GIFT_LINK_SUB_STATUSES = frozenset({SubStatus.GV_LINK_UNCLAIMED, SubStatus.GV_LINK_CLAIMED})


def filled_from_inventory(*, sub_status: str, vendor_order_ref: str) -> bool:
    """An order was filled from inventory alone: INVENTORY_FULFILLED, or a delivered
    LINK order that never went to the vendor (no vendor order reference)."""
    if sub_status == SubStatus.INVENTORY_FULFILLED:
        return True
    return sub_status in GIFT_LINK_SUB_STATUSES and not vendor_order_ref


def delivery_sub_statuses(speed: str) -> tuple[SubStatus, ...]:
    """The sub-statuses a finished order of that delivery time can have."""
    if speed == DeliveryTime.INSTANT:
        return (SubStatus.INVENTORY_FULFILLED,)
    return VENDOR_SUB_STATUSES


def is_expired(expires_at: datetime | None, *, now: datetime | None = None) -> bool:
    """A voucher is expired from its expiry moment on (the complement of the
    expiry half of `allocatable_q`); no expiry means it never expires."""
    return expires_at is not None and expires_at <= (now or timezone.now())


# Vouchers an inventory admin may take out of circulation: block an AVAILABLE
# one, revoke an AVAILABLE or BLOCKED one. The other statuses belong to an order
# (or are final).
BLOCKABLE_STATUSES = frozenset({InventoryStatus.AVAILABLE})
REVOCABLE_STATUSES = frozenset({InventoryStatus.AVAILABLE, InventoryStatus.BLOCKED})


# --- Voucher imports ----------------------------------------------------------------


def batch_importable(batch: ScannedBatch) -> bool:
    """A batch may be imported once: validated, without a row error, not empty."""
    return (
        batch.status == ImportBatchStatus.VALIDATING
        and not batch.error_count
        and batch.row_count > 0
    )


def file_importable(*, file_error: str, error_count: int, row_count: int) -> bool:
    """A scanned import file may become a batch to import: readable, without a
    row error, not empty."""
    return not file_error and error_count == 0 and row_count > 0


# Batches whose vouchers reached the stock: they may be quarantined or revoked.
STOCKED_BATCH_STATUSES = frozenset({ImportBatchStatus.IMPORTED, ImportBatchStatus.QUARANTINED})


# --- Fulfilment lease ----------------------------------------------------------------

# A fulfilment run leases the order it works on (`Order.leased_until`, for
# TASK_LEASE_SECONDS). While the lease holds, no second run starts the order and
# nobody cancels or retries it; a run that dies leaves a lapsed lease, which the
# recovery sweep takes as "resume this order". `next_attempt_at` is only ever
# when a scheduled retry is due.


def lease_held_q(*, at: datetime) -> Q:
    """Orders a fulfilment run holds at `at`: their lease runs past it."""
    return Q(leased_until__gt=at)


def is_leased(*, leased_until: datetime | None, at: datetime) -> bool:
    """`lease_held_q` for one order in hand."""
    return leased_until is not None and leased_until > at
