"""Wallet services: the only code that changes a balance.

Each call locks the wallet row, checks the rule, updates the balance and
writes its WalletEntry in one transaction, so balance == sum(entries) always.
A debit does it in two statements: one conditional UPDATE (the lock, the
no-overdraft check and the new balance at once) and the entry's INSERT.

Money in from staff is maker-checker: a top-up or adjustment by a signed-in
user above WALLET_CREDIT_SECOND_APPROVAL_LIMIT becomes a pending
WalletCreditRequest, and only a different user's approval moves the money.
The request row is locked for the whole decision, so two approvers deciding
at the same moment are serialised and the second one finds it decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, DecimalException
from typing import Any, cast

from django.conf import settings
from django.db import NotSupportedError, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression, F, Subquery, Sum
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from orders.enums import WalletEntryKind
from orders.errors import (
    CreditNeedsSecondApprover,
    CreditOwnRequest,
    CreditRequestDecided,
    InsufficientFunds,
    InvalidAmount,
    InvalidEnumValue,
    NotFound,
    ValidationFailed,
)
from orders.models import Order, Wallet, WalletCreditRequest, WalletEntry
from orders.rules import CENT, in_cents, summed_cents
from orders.services.actors import Actor
from orders.services.audit import audit_record


def _column_max(model: type[models.Model], name: str) -> Decimal:
    """The largest value a DecimalField column holds: numeric(14, 2) -> 999999999999.99."""
    column = cast("models.DecimalField[Any, Any]", model._meta.get_field(name))
    assert column.max_digits is not None and column.decimal_places is not None
    places = column.decimal_places
    return Decimal(10) ** (column.max_digits - places) - Decimal(1).scaleb(-places)


# One bound for every money input: the ledger's amount column. A balance has its
# own column bound, checked when a credit would take it past it.
MAX_AMOUNT = _column_max(WalletEntry, "amount")
MAX_BALANCE = min(_column_max(Wallet, "balance"), _column_max(WalletEntry, "balance_after"))


def money(value: object, *, field: str = "amount") -> Decimal:
    """Parse an exact amount with at most 2 decimals that the amount columns can hold;
    floats, NaN, infinities and out-of-range values are refused."""
    if isinstance(value, float):
        raise InvalidAmount(f"{field} must be a decimal string, not a float.", field=field)
    try:
        amount = Decimal(str(value).strip())
    except (DecimalException, ValueError):
        raise InvalidAmount(
            f"{field} must be a decimal amount like '25.00'.", field=field
        ) from None
    if not amount.is_finite():
        raise InvalidAmount(f"{field} must be a finite amount.", field=field)
    # Compared before any arithmetic: 1e400 cannot even be rounded to the cent.
    if amount.copy_abs() > MAX_AMOUNT:
        raise InvalidAmount(f"{field} is too large: at most {MAX_AMOUNT}.", field=field)
    if not in_cents(amount):
        raise InvalidAmount(f"{field} has more than 2 decimal places.", field=field)
    return amount.quantize(CENT)


def _check_new_balance(wallet: Wallet, amount: Decimal) -> Decimal:
    new_balance = wallet.balance + amount
    if new_balance < 0:
        raise InsufficientFunds(currency=wallet.currency, balance=wallet.balance, requested=-amount)
    if new_balance > MAX_BALANCE:
        raise InvalidAmount(
            f"This would take the balance to {new_balance} {wallet.currency}, above the "
            f"largest balance a wallet can hold ({MAX_BALANCE}).",
            field="amount",
        )
    return new_balance


def _positive(value: object) -> Decimal:
    amount = money(value)
    if amount <= 0:
        raise InvalidAmount("amount must be greater than zero.", field="amount")
    return amount


def _apply(
    *,
    wallet_id: int,
    kind: WalletEntryKind,
    amount: Decimal,
    actor: Actor,
    note: str,
    order: Order | None = None,
) -> WalletEntry:
    # FOR NO KEY UPDATE, like every row lock here: the wallet's key never changes,
    # and a plain FOR UPDATE would also block the FOR KEY SHARE that PostgreSQL
    # takes on the wallet when another transaction writes a row referencing it
    # (fulfilment updating its order twice re-checks order.wallet_id): with
    # FOR UPDATE a payment holding its wallet and fulfilment of another order of
    # that wallet deadlocked under load. A debit's UPDATE takes the same lock.
    wallet = Wallet.objects.select_for_update(no_key=True).filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    new_balance = _check_new_balance(wallet, amount)
    wallet.balance = new_balance
    wallet.save(update_fields=["balance", "updated_at"])
    return WalletEntry.objects.create(
        wallet=wallet,
        kind=kind,
        amount=amount,
        balance_after=new_balance,
        order=order,
        note=note[:500],
        actor_user_id=actor.user_id,
        actor_label=actor.label,
    )


def _guard_second_approver(*, amount: Decimal, actor: Actor, label: str) -> None:
    # A signed-in user never moves more than the limit alone; the system (seeding,
    # the operator's create_client) is not a person and is not limited.
    limit = settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT
    if actor.user_id is not None and amount.copy_abs() > limit:
        raise CreditNeedsSecondApprover(
            f"{label}s above {limit} need a second approver: request one instead."
        )


def _credit(
    *,
    wallet_id: int,
    kind: WalletEntryKind,
    amount: Decimal,
    actor: Actor,
    note: str,
    data: dict[str, Any],
) -> WalletEntry:
    entry = _apply(wallet_id=wallet_id, kind=kind, amount=amount, actor=actor, note=note)
    action = "wallet.top_up" if kind == WalletEntryKind.TOP_UP else "wallet.adjust"
    audit_record(
        action=action,
        actor=actor,
        reason=note,
        data={"wallet_id": wallet_id, "entry_id": entry.pk, "amount": str(entry.amount), **data},
    )
    return entry


@transaction.atomic
def wallet_top_up(*, wallet_id: int, amount: object, actor: Actor, note: str = "") -> WalletEntry:
    """Credit a wallet with new funds (positive amount), audited; a user alone only up
    to WALLET_CREDIT_SECOND_APPROVAL_LIMIT."""
    value = _positive(amount)
    _guard_second_approver(amount=value, actor=actor, label="Top-up")
    return _credit(
        wallet_id=wallet_id,
        kind=WalletEntryKind.TOP_UP,
        amount=value,
        actor=actor,
        note=note,
        data={},
    )


class NextEntryId(Expression):
    """The id the next ledger entry will take, reserved by the statement that reads it.

    Placing writes it into the new order's row (`Order.transaction_id`) and then
    debits with `entry_id=` that id, so neither row needs an UPDATE afterwards
    (the foreign key is checked at commit). PostgreSQL takes it from the entries'
    identity sequence, which never hands a value out twice; SQLite from the
    table's AUTOINCREMENT counter, which no other writer can move until this
    transaction ends (a writer holds the database lock from BEGIN to COMMIT).
    """

    output_field = models.BigIntegerField()

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, tuple[str, ...]]:
        table = WalletEntry._meta.db_table
        if connection.vendor == "postgresql":
            return "nextval(pg_get_serial_sequence(%s, %s))", (table, "id")
        if connection.vendor == "sqlite":
            sql = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM sqlite_sequence WHERE name = %s)"
            return sql, (table,)
        raise NotSupportedError(f"NextEntryId is not written for {connection.vendor}.")


def wallet_debit(
    *,
    wallet_id: int,
    amount: object,
    actor: Actor,
    order: Order | None = None,
    note: str = "",
    entry_id: int | None = None,
) -> WalletEntry:
    """Take money for an order; refuses to go below zero and then writes nothing.

    One conditional UPDATE takes the wallet's row lock (FOR NO KEY UPDATE, as
    every lock here: the key never changes), checks the balance covers the
    amount and lowers it; one INSERT writes the entry, reading balance_after
    back from the row just updated (RETURNING). Money moves exactly once per
    order: the ledger holds one ORDER_DEBIT per order (a unique constraint).
    Inside a transaction it joins it without a savepoint; a refusal is raised
    after nothing was written, so the caller's transaction stays usable.
    """
    value = _positive(amount)
    with transaction.atomic(savepoint=False):
        debited = Wallet.objects.filter(pk=wallet_id, balance__gte=value).update(
            balance=F("balance") - value, updated_at=timezone.now()
        )
        entry = None
        if debited:
            entry = WalletEntry.objects.create(
                id=entry_id,
                wallet_id=wallet_id,
                kind=WalletEntryKind.ORDER_DEBIT,
                amount=-value,
                balance_after=Subquery(Wallet.objects.filter(pk=wallet_id).values("balance")),
                order=order,
                note=note[:500],
                actor_user_id=actor.user_id,
                actor_label=actor.label,
            )
    if entry is None:
        wallet = Wallet.objects.filter(pk=wallet_id).first()
        if wallet is None:
            raise NotFound("No such wallet.")
        raise InsufficientFunds(currency=wallet.currency, balance=wallet.balance, requested=value)
    return entry


@transaction.atomic
def wallet_refund(
    *, wallet_id: int, amount: object, actor: Actor, order: Order, note: str = ""
) -> WalletEntry:
    """Give back an order's undelivered value; at most one refund per order."""
    return _apply(
        wallet_id=wallet_id,
        kind=WalletEntryKind.REFUND,
        amount=_positive(amount),
        actor=actor,
        order=order,
        note=note,
    )


def _nonzero(value: object) -> Decimal:
    amount = money(value)
    if amount == 0:
        raise InvalidAmount("amount must not be zero.", field="amount")
    return amount


@transaction.atomic
def wallet_adjust(*, wallet_id: int, amount: object, actor: Actor, reason: str) -> WalletEntry:
    """Correct a balance by a signed amount; a reason is required and audited; a user
    alone only up to WALLET_CREDIT_SECOND_APPROVAL_LIMIT either way."""
    if not reason.strip():
        raise InvalidAmount("An adjustment needs a reason.", field="reason")
    value = _nonzero(amount)
    _guard_second_approver(amount=value, actor=actor, label="Adjustment")
    return _credit(
        wallet_id=wallet_id,
        kind=WalletEntryKind.ADJUSTMENT,
        amount=value,
        actor=actor,
        note=reason,
        data={},
    )


# --- Maker-checker on money in ----------------------------------------------------

CreditKind = WalletCreditRequest.Kind
CreditStatus = WalletCreditRequest.Status
CREDIT_DECISIONS = ("APPROVE", "REJECT")


@dataclass(frozen=True)
class CreditOutcome:
    """What a credit request or decision did, in words a finance user can read."""

    message: str
    entry: WalletEntry | None = None
    request: WalletCreditRequest | None = None

    @property
    def waiting_for_second_approver(self) -> bool:
        return self.request is not None and self.request.status == CreditStatus.PENDING


def _credit_kind(value: object) -> CreditKind:
    try:
        return CreditKind(str(value).upper())
    except ValueError:
        raise InvalidEnumValue(field="kind", value=value, valid=CreditKind.values) from None


def _signed_in(actor: Actor, what: str) -> None:
    if actor.user_id is None:
        raise ValidationFailed(f"A credit {what} is made by a signed-in user.", field="actor")


@transaction.atomic
def wallet_credit_request(
    *, wallet_id: int, kind: object, amount: object, actor: Actor, reason: str
) -> CreditOutcome:
    """A staff top-up (positive) or adjustment (signed): moved at once up to
    WALLET_CREDIT_SECOND_APPROVAL_LIMIT, above it a pending request that a different
    user must approve. A reason is required."""
    choice = _credit_kind(kind)
    _signed_in(actor, "request")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A top-up or adjustment needs a reason.", field="reason")
    value = _positive(amount) if choice == CreditKind.TOP_UP else _nonzero(amount)
    label = choice.label
    limit = settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT
    if value.copy_abs() <= limit:
        if choice == CreditKind.TOP_UP:
            entry = wallet_top_up(wallet_id=wallet_id, amount=value, actor=actor, note=reason)
        else:
            entry = wallet_adjust(wallet_id=wallet_id, amount=value, actor=actor, reason=reason)
        return CreditOutcome(
            message=f"{label}: {entry.amount} {entry.wallet.currency}, "
            f"balance now {entry.balance_after}.",
            entry=entry,
        )
    wallet = Wallet.objects.filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    # Refused now rather than at approval when it could not be paid today; the
    # approval checks again under the wallet lock.
    _check_new_balance(wallet, value)
    request = WalletCreditRequest.objects.create(
        wallet=wallet, kind=choice, amount=value, reason=reason[:500], requested_by=actor.user
    )
    audit_record(
        action="wallet.credit_request",
        actor=actor,
        reason=reason,
        data={
            "request_id": request.pk,
            "wallet_id": wallet.pk,
            "kind": choice.value,
            "amount": str(value),
            "currency": wallet.currency,
            "second_approval_limit": str(limit),
        },
    )
    return CreditOutcome(
        message=f"{label} of {value} {wallet.currency} is waiting for a second approver "
        f"(above {limit}); no money has moved yet.",
        request=request,
    )


@transaction.atomic
def wallet_credit_decide(
    *, request_id: int, actor: Actor, decision: object, note: str
) -> CreditOutcome:
    """Approve (a user other than the maker; the money moves exactly once) or reject
    (with a note) a pending credit request."""
    choice = str(decision).upper()
    if choice not in CREDIT_DECISIONS:
        raise InvalidEnumValue(field="decision", value=decision, valid=CREDIT_DECISIONS)
    _signed_in(actor, "decision")
    note = (note or "").strip()
    if choice == "REJECT" and not note:
        raise ValidationFailed("a reject needs a note saying why", field="note")
    request = (
        WalletCreditRequest.objects.select_for_update(no_key=True).filter(pk=request_id).first()
    )
    if request is None:
        raise NotFound("No such credit request.")
    if request.status != CreditStatus.PENDING:
        raise CreditRequestDecided(f"this request was already {request.status.lower()}")
    wallet = Wallet.objects.get(pk=request.wallet_id)
    data = {
        "request_id": request.pk,
        "wallet_id": request.wallet_id,
        "kind": request.kind,
        "amount": str(request.amount),
        "currency": wallet.currency,
        "requested_by_id": request.requested_by_id,
    }
    what = f"{CreditKind(request.kind).label.lower()} of {request.amount} {wallet.currency}"
    request.decided_by = actor.user
    request.decided_at = timezone.now()
    request.decision_note = note[:500]
    if choice == "REJECT":
        request.status = CreditStatus.REJECTED
        request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit_record(action="wallet.credit_reject", actor=actor, reason=note, data=data)
        return CreditOutcome(
            message=f"Credit request {request.pk}: {what} rejected.", request=request
        )
    if request.requested_by_id == actor.user_id:
        raise CreditOwnRequest(
            "you made this request; the second approval must come from a different user"
        )
    entry = _credit(
        wallet_id=request.wallet_id,
        kind=WalletEntryKind(request.kind),
        amount=request.amount,
        actor=actor,
        note=request.reason,
        data={"request_id": request.pk, "requested_by_id": request.requested_by_id},
    )
    request.status = CreditStatus.APPROVED
    request.entry = entry
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "entry"])
    audit_record(
        action="wallet.credit_approve",
        actor=actor,
        reason=note,
        data={**data, "entry_id": entry.pk},
    )
    return CreditOutcome(
        message=f"Credit request {request.pk}: {what} approved, balance now {entry.balance_after}.",
        entry=entry,
        request=request,
    )


@dataclass(frozen=True)
class LedgerMismatch:
    wallet_id: int
    client: str
    currency: str
    balance: Decimal
    entries_total: Decimal


def ledger_mismatches() -> list[LedgerMismatch]:
    """Every wallet whose balance differs from the sum of its entries."""
    wallets = Wallet.objects.select_related("client").annotate(total=Sum("entries__amount"))
    mismatches = []
    for w in wallets.order_by("pk"):
        total = summed_cents(w.total)
        if w.balance != total:
            mismatches.append(LedgerMismatch(w.pk, w.client.name, w.currency, w.balance, total))
    return mismatches
