"""The vendor adapter protocol: what the fulfilment engine needs from a supplier.

Adapters are called OUTSIDE any database transaction. `place` must be
idempotent on `idempotency_key`: calling it again with the same key returns
the same vendor order and never buys twice. Secrets in `VendorVoucher` are
plaintext only until the engine stores them encrypted; never log them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class VendorProduct(Protocol):
    """What an adapter reads of the product it buys (an orders.models.Product)."""

    @property
    def name(self) -> str: ...

    @property
    def brand(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def delivery_type(self) -> str: ...


class VendorError(Exception):
    """Base of the errors an adapter may raise; messages never hold a secret."""


class VendorTransientError(VendorError):
    """Timeout, 5xx, rate limit: the same call may succeed later."""


class VendorRejected(VendorError):
    """The vendor refused the order for good (out of stock, blocked, invalid)."""


@dataclass(frozen=True)
class VendorOrder:
    """A vendor order: its reference and how many units the vendor accepted."""

    ref: str
    accepted: int
    rejected_reason: str = ""


@dataclass(frozen=True)
class VendorVoucher:
    """One unit bought from a vendor, in plaintext until the engine seals it."""

    card_number: str
    pin_code: str | None = None
    claim_url: str | None = None
    voucher_reference_number: str | None = None
    expires_at_days: int = 365

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"<VendorVoucher …{self.card_number[-4:]}>"


class VendorAdapter(Protocol):
    def place(
        self,
        *,
        order_ref: str,
        idempotency_key: str,
        product: VendorProduct,
        denomination: Decimal,
        quantity: int,
    ) -> VendorOrder:
        """Create (or find, for a known key) the vendor order."""
        ...

    def fetch(self, *, vendor_order_ref: str, product: VendorProduct) -> list[VendorVoucher]:
        """The vouchers of an accepted vendor order (same list on every call)."""
        ...


@dataclass(frozen=True)
class RechargeResult:
    """What the operator says about one recharge."""

    ref: str
    status: str  # RechargeStatus value: DELIVERED (submitted), RECHARGED or FAILED
    reason: str = ""


class OperatorAdapter(Protocol):
    def submit(
        self, *, idempotency_key: str, phone: str, amount: Decimal, currency: str
    ) -> RechargeResult:
        """Submit a recharge (idempotent on the key); status DELIVERED or FAILED."""
        ...

    def confirm(self, *, ref: str) -> RechargeResult:
        """Whether the operator credited the balance: RECHARGED or FAILED."""
        ...
