"""Wallet services: the only code that changes a balance.

Each call locks the wallet row, checks the rule, updates the balance and
writes its WalletEntry in one transaction, so balance == sum(entries) always.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Sum

from orders.enums import WalletEntryKind
from orders.errors import InsufficientFunds, InvalidAmount
from orders.models import Order, Wallet, WalletEntry
from orders.services.actors import Actor
from orders.services.audit import audit_record

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")


def money(value: object, *, field: str = "amount") -> Decimal:
    """Parse an exact amount with at most 2 decimals; floats are refused."""
    if isinstance(value, float):
        raise InvalidAmount(f"{field} must be a decimal string, not a float.", field=field)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidAmount(
            f"{field} must be a decimal amount like '25.00'.", field=field
        ) from None
    if not amount.is_finite():
        raise InvalidAmount(f"{field} must be a finite amount.", field=field)
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise InvalidAmount(f"{field} has more than 2 decimal places.", field=field)
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount(f"{field} is too large.", field=field)
    return amount.quantize(CENT)


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
    # (fulfilment updating its order twice re-checks order.wallet_id). Placing
    # holds this lock and then waits for an audit chain head that fulfilment
    # holds: with FOR UPDATE the two deadlocked under load.
    wallet = Wallet.objects.select_for_update(no_key=True).get(pk=wallet_id)
    new_balance = wallet.balance + amount
    if new_balance < 0:
        raise InsufficientFunds(currency=wallet.currency, balance=wallet.balance, requested=-amount)
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


@transaction.atomic
def wallet_top_up(*, wallet_id: int, amount: object, actor: Actor, note: str = "") -> WalletEntry:
    """Credit a wallet with new funds (positive amount), audited."""
    entry = _apply(
        wallet_id=wallet_id,
        kind=WalletEntryKind.TOP_UP,
        amount=_positive(amount),
        actor=actor,
        note=note,
    )
    audit_record(
        action="wallet.top_up",
        actor=actor,
        reason=note,
        data={"wallet_id": wallet_id, "entry_id": entry.pk, "amount": str(entry.amount)},
    )
    return entry


@transaction.atomic
def wallet_debit(
    *, wallet_id: int, amount: object, actor: Actor, order: Order | None = None, note: str = ""
) -> WalletEntry:
    """Take money for an order; refuses to go below zero and then writes nothing."""
    return _apply(
        wallet_id=wallet_id,
        kind=WalletEntryKind.ORDER_DEBIT,
        amount=-_positive(amount),
        actor=actor,
        order=order,
        note=note,
    )


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


@transaction.atomic
def wallet_adjust(*, wallet_id: int, amount: object, actor: Actor, reason: str) -> WalletEntry:
    """Correct a balance by a signed amount; a reason is required and audited."""
    if not reason.strip():
        raise InvalidAmount("An adjustment needs a reason.", field="reason")
    value = money(amount)
    if value == 0:
        raise InvalidAmount("amount must not be zero.", field="amount")
    entry = _apply(
        wallet_id=wallet_id, kind=WalletEntryKind.ADJUSTMENT, amount=value, actor=actor, note=reason
    )
    audit_record(
        action="wallet.adjust",
        actor=actor,
        reason=reason,
        data={"wallet_id": wallet_id, "entry_id": entry.pk, "amount": str(entry.amount)},
    )
    return entry


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
        # SQLite sums decimals as floats (100.00 - 99.99 = 0.0100000000000051):
        # round to the cent, the unit every entry is written in.
        total = (w.total or Decimal("0")).quantize(CENT)
        if w.balance != total:
            mismatches.append(LedgerMismatch(w.pk, w.client.name, w.currency, w.balance, total))
    return mismatches
