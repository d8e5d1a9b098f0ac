"""Domain errors. Services raise them; the API and the dashboard translate them.

Each error carries a snake_case `code` (the API's `error` field) and a message
safe to show to the caller: never a secret, never a stack trace. An error says
what went wrong, not how a channel answers it: the API's one table of HTTP
statuses per code is in orders/api/errors.py; the dashboard shows the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from django import db


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError):
    """Bad input for a business rule; `field` names what to fix."""

    code = "validation_error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


class InvalidEnumValue(ValidationFailed):
    def __init__(self, *, field: str, value: object, valid: Sequence[str]) -> None:
        super().__init__(
            f"{value!r} is not a valid {field}; expected one of: {', '.join(valid)}.",
            field=field,
            valid=list(valid),
        )


class InvalidAmount(ValidationFailed):
    pass


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, message: str = "No Matching Result Found!", **details: Any) -> None:
        super().__init__(message, **details)


class Conflict(DomainError):
    code = "conflict"


class InsufficientFunds(DomainError):
    code = "insufficient_funds"

    def __init__(self, *, currency: str, balance: Any, requested: Any) -> None:
        super().__init__(
            f"Insufficient wallet balance: {balance} {currency} available, "
            f"{requested} {currency} required.",
        )


class IllegalTransition(DomainError):
    code = "illegal_transition"

    def __init__(self, *, order_id: int | None, current: tuple[str, str], target: tuple[str, str]):
        super().__init__(
            f"Order {order_id} cannot move from {current[0]}/{current[1]} "
            f"to {target[0]}/{target[1]}.",
        )
        self.current = current
        self.target = target


class PermissionDenied(DomainError):
    code = "forbidden"


class InsufficientScope(PermissionDenied):
    """The credential (or its token) does not hold the scope an operation needs."""

    code = "insufficient_scope"

    def __init__(self, *, missing: Sequence[str]) -> None:
        names = ", ".join(missing)
        super().__init__(
            f"This credential lacks the scope {names} needed here; "
            "ask for a credential (or a token) that holds it.",
            missing=list(missing),
        )


class AddressNotAllowed(PermissionDenied):
    """The request comes from an address outside the credential's allowlist. The
    message never names the allowlist."""

    code = "ip_not_allowed"

    def __init__(self) -> None:
        super().__init__("Requests with this credential are not accepted from your address.")


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DecryptionFailed(DomainError):
    """A stored secret could not be decrypted (wrong key, tampered value)."""

    code = "decryption_failed"


class VoucherNotRevealable(DomainError):
    code = "not_revealable"


class GiftLinkGone(DomainError):
    """A gift link that existed but can no longer be opened (expired or revoked)."""

    code = "gift_link_gone"


class GiftLinkLocked(DomainError):
    """A PROTECTED gift link locked after too many wrong one-time codes, until
    support unlocks it."""

    code = "gift_link_locked"


class GiftLinkCodeRefused(DomainError):
    """A PROTECTED link's one-time code step refused: no code yet, a wrong or
    expired code, a resend too soon, or an e-mail that could not be sent. The
    message is for the recipient; `retry_after` (seconds) when waiting helps."""

    code = "gift_link_code_refused"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- Fulfilment engine (owner: fulfilment) ---------------------------------


class OrderNotCancellable(Conflict):
    """Only orders with nothing delivered, allocated or bought can be cancelled."""

    code = "not_cancellable"


class OrderNotRetryable(Conflict):
    """Retry is for pending orders waiting on a retry or stuck awaiting an admin."""

    code = "not_retryable"


class RefundNotDue(Conflict):
    """The order owes the client nothing (or is not in a refundable state)."""

    code = "refund_not_due"


# --- Inventory (import, block, revoke) ---------------------------------------


class InventoryConflict(Conflict):
    """A voucher or import batch is not in a state that allows the action."""

    code = "inventory_conflict"


class VoucherImportRejected(ValidationFailed):
    """An import found bad rows; nothing was imported. `errors` are
    {"row": spreadsheet row number, "reason": text}, never a cell's value."""

    code = "import_rejected"

    def __init__(
        self, message: str, *, batch_id: int, errors: list[dict[str, Any]], error_count: int
    ) -> None:
        super().__init__(message, field="file", batch_id=batch_id, error_count=error_count)
        self.batch_id = batch_id
        self.errors = errors
        self.error_count = error_count


# --- Catalog (price changes) --------------------------------------------------


class PriceChangeNotPending(Conflict):
    """The price change was already approved, applied or rejected."""

    code = "price_change_not_pending"


class PriceChangeStale(Conflict):
    """The product changed since the request: its before values no longer hold."""

    code = "price_change_stale"


class PriceChangeOwnRequest(PermissionDenied):
    """The maker of a price change cannot approve it: a second person must."""

    code = "own_price_change"


# --- Money (wallet credits, refund reviews) ----------------------------------


class CreditNeedsSecondApprover(Conflict):
    """A staff top-up or adjustment above the limit goes through wallet_credit_request."""

    code = "second_approval_required"


class CreditOwnRequest(Conflict):
    """The maker of a credit request can never be its approver."""

    code = "own_credit_request"


class CreditRequestDecided(Conflict):
    """A credit request is approved or rejected once."""

    code = "credit_request_decided"


class RefundAlreadyApproved(Conflict):
    """The same user approving twice never counts as two approvals."""

    code = "refund_already_approved"


# --- Webhooks (self-service endpoints) ------------------------------------------


class DestinationNotAllowed(ValidationFailed):
    """A webhook URL whose host is (or resolves to) an address that is not public:
    private, loopback, link-local, metadata, CGNAT, multicast, reserved."""

    code = "destination_not_allowed"

    def __init__(self, message: str = "destination not allowed: private network") -> None:
        super().__init__(message, field="url")


class WebhookEndpointInactive(Conflict):
    """The endpoint was deactivated: nothing is sent to it any more."""

    code = "webhook_endpoint_inactive"


class WebhookDeliveryNotReplayable(Conflict):
    """Only a DELIVERED or FAILED delivery is sent again; a PENDING one is queued."""

    code = "webhook_delivery_not_replayable"


# A dependency out of reach right now (a database failover or restart, a network
# cut, Redis stopped): not an error of the request. The API answers 503
# `service_unavailable`, the dashboard its 503 page; both with Retry-After.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    db.OperationalError,
    db.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
UNAVAILABLE_RETRY_SECONDS = 5
