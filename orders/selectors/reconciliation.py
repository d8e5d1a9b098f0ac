"""Reconciliation of the finance workspace: money in and out per UTC day and
wallet currency, and whether the finished orders of each day add up.

The page reads the rollups (`reconciliation_report`, `ledger_mismatches_as_of`);
the grouped queries over the ledger (`ledger_sums`, `order_checks`) are what
the rollups are built from and what the page reads before they exist."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from orders.enums import ItemStatus, OrderStatus, RefundStatus, WalletEntryKind
from orders.errors import ValidationFailed
from orders.models import (
    LedgerDayRollup,
    OrderItem,
    ReconDayRollup,
    Wallet,
    WalletBalanceRollup,
    WalletEntry,
)
from orders.rules import (
    REFUNDABLE_STATUSES,
    TERMINAL_STATUSES,
    ZERO,
    status_values,
    summed_cents,
)
from orders.selectors.rollups import rollup_state

_MONEY = DecimalField(max_digits=20, decimal_places=2)


@dataclass(frozen=True)
class ReconRow:
    """One UTC day × wallet currency.

    `debits`, `refunds`, `top_ups` and `adjustments` are the ledger's entries
    created that day. The check is over the orders debited that day that are
    finished (terminal): what they were charged, minus what was refunded for
    them, minus the value of what they delivered, must be zero; it is not while
    a refund is owed and unpaid (`awaiting_refund`). `open_orders` were debited
    that day and are not finished yet, so they are left out of the check.
    """

    day: date
    currency: str
    debits: Decimal
    refunds: Decimal
    top_ups: Decimal
    adjustments: Decimal
    terminal_debits: Decimal
    terminal_refunds: Decimal
    delivered_value: Decimal
    difference: Decimal
    awaiting_refund: int
    open_orders: int

    @property
    def flagged(self) -> bool:
        return self.difference != ZERO


def _kind_sum(kind: str, sign: int = 1) -> Coalesce:
    return _summed(F("amount") * sign, filter=Q(kind=kind))


def _summed(expression: Any, *, filter: Q | None = None) -> Coalesce:
    """A sum of money, 0 (not NULL) over no row."""
    return Coalesce(
        Sum(expression, filter=filter, output_field=_MONEY), Value(ZERO), output_field=_MONEY
    )


def ledger_sums(entries: QuerySet[WalletEntry], *, by: str = "") -> QuerySet[Any]:
    """Ledger entries summed by kind per UTC day of `created_at` and wallet currency
    (and `by`, a further column such as `wallet_id`): one grouped query."""
    keys = ["day", "currency", *([by] if by else [])]
    return (
        entries.order_by()
        .annotate(day=TruncDate("created_at", tzinfo=UTC), currency=F("wallet__currency"))
        .values(*keys)
        .annotate(
            debits=_kind_sum(WalletEntryKind.ORDER_DEBIT, -1),
            refunds=_kind_sum(WalletEntryKind.REFUND),
            top_ups=_kind_sum(WalletEntryKind.TOP_UP),
            adjustments=_kind_sum(WalletEntryKind.ADJUSTMENT),
            total=_summed(F("amount")),
        )
    )


def order_checks(entries: QuerySet[WalletEntry]) -> QuerySet[Any]:
    """The check of the orders debited by `entries`, per UTC day of the debit and
    wallet currency: one grouped query (see `ReconRow`)."""
    # The charged value of an order's delivered units: all of it when delivered;
    # what is left after the refund owed once one is scheduled; pro rata of the
    # delivered items while a refundable order has no refund scheduled yet.
    delivered_items = (
        OrderItem.objects.filter(order=OuterRef("order_id"), status=ItemStatus.DELIVERED)
        .order_by()
        .values("order_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    delivered_value = Case(
        When(order__status=OrderStatus.DELIVERED, then=F("order__wallet_amount")),
        When(
            order__refund_status__in=[RefundStatus.NOT_REFUNDED, RefundStatus.REFUNDED],
            then=F("order__wallet_amount") - F("order__refund_amount"),
        ),
        default=ExpressionWrapper(
            F("order__wallet_amount")
            * Coalesce(Subquery(delivered_items, output_field=IntegerField()), Value(0))
            / F("order__quantity"),
            output_field=_MONEY,
        ),
        output_field=_MONEY,
    )
    refunded = Case(
        When(order__refund_status=RefundStatus.REFUNDED, then=F("order__refund_amount")),
        default=Value(ZERO),
        output_field=_MONEY,
    )
    terminal = Q(order__status__in=status_values(TERMINAL_STATUSES))
    awaiting = Q(order__refund_status=RefundStatus.NOT_REFUNDED) | Q(
        order__refund_status=RefundStatus.NONE,
        order__status__in=status_values(REFUNDABLE_STATUSES),
    )
    return (
        entries.filter(kind=WalletEntryKind.ORDER_DEBIT, order__isnull=False)
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=UTC), currency=F("wallet__currency"))
        .values("day", "currency")
        .annotate(
            terminal_debits=_summed(-F("amount"), filter=terminal),
            terminal_refunds=_summed(refunded, filter=terminal),
            delivered_value=_summed(delivered_value, filter=terminal),
            awaiting_refund=Count("id", filter=terminal & awaiting),
            open_orders=Count("id", filter=~terminal),
        )
    )


def _row(line: Mapping[str, Any], check: Mapping[str, Any]) -> ReconRow:
    debits = summed_cents(check.get("terminal_debits"))
    refunds = summed_cents(check.get("terminal_refunds"))
    delivered = summed_cents(check.get("delivered_value"))
    return ReconRow(
        day=_as_date(line["day"]),
        currency=line["currency"],
        debits=summed_cents(line["debits"]),
        refunds=summed_cents(line["refunds"]),
        top_ups=summed_cents(line["top_ups"]),
        adjustments=summed_cents(line["adjustments"]),
        terminal_debits=debits,
        terminal_refunds=refunds,
        delivered_value=delivered,
        difference=debits - refunds - delivered,
        awaiting_refund=int(check.get("awaiting_refund") or 0),
        open_orders=int(check.get("open_orders") or 0),
    )


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class Reconciliation:
    """The report's rows, and `as_of`: when the rollups it was read from were
    refreshed (None: read live from the ledger, no rollup built yet)."""

    rows: list[ReconRow]
    as_of: datetime | None


def reconciliation_report(*, days: int = 30, now: datetime | None = None) -> Reconciliation:
    """Per UTC day and wallet currency over the last `days` days (today included),
    newest day first. Read from the rollups (as of their last refresh: a few
    hundred rows whatever the number of orders); from the ledger itself until
    the rollups are first built."""
    if not 1 <= days <= 366:
        raise ValidationFailed("days must be between 1 and 366.", field="days")
    today = (now or timezone.now()).astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    state = rollup_state()
    if state is None:
        return Reconciliation(rows=reconciliation(days=days, now=now), as_of=None)
    ledger = (
        LedgerDayRollup.objects.filter(day__gte=first_day)
        .values("day", "currency")
        .annotate(
            debits=Sum("debits"),
            refunds=Sum("refunds"),
            top_ups=Sum("top_ups"),
            adjustments=Sum("adjustments"),
        )
        .order_by()
    )
    checks = {
        (c["day"], c["currency"]): c
        for c in ReconDayRollup.objects.filter(day__gte=first_day).values()
    }
    rows = [_row(line, checks.get((line["day"], line["currency"])) or {}) for line in ledger]
    rows.sort(key=lambda r: (-r.day.toordinal(), r.currency))
    return Reconciliation(rows=rows, as_of=state.refreshed_at)


def reconciliation(*, days: int = 30, now: datetime | None = None) -> list[ReconRow]:
    """Per UTC day and wallet currency over the last `days` days (today included),
    newest day first, from the ledger itself: two grouped queries over every
    entry of the period (`reconciliation_report` reads the rollups instead)."""
    if not 1 <= days <= 366:
        raise ValidationFailed("days must be between 1 and 366.", field="days")
    today = (now or timezone.now()).astimezone(UTC).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    entries = WalletEntry.objects.filter(created_at__gte=start)
    checked: dict[Any, dict[str, Any]] = {
        (c["day"], c["currency"]): dict(c) for c in order_checks(entries)
    }
    rows = [
        _row(line, checked.get((line["day"], line["currency"])) or {})
        for line in ledger_sums(entries)
    ]
    rows.sort(key=lambda r: (-r.day.toordinal(), r.currency))
    return rows


@dataclass(frozen=True)
class LedgerMismatch:
    wallet_id: int
    client: str
    currency: str
    balance: Decimal
    entries_total: Decimal


def ledger_mismatches_as_of() -> list[LedgerMismatch] | None:
    """Every wallet whose balance differs from the sum of its entries, from the
    rollups (balances and ledger sums of the same snapshot, the last refresh);
    None until the rollups are first built."""
    if rollup_state() is None:
        return None
    totals = dict(
        LedgerDayRollup.objects.values("wallet_id")
        .annotate(total=Sum("total"))
        .order_by()
        .values_list("wallet_id", "total")
    )
    balances = dict(WalletBalanceRollup.objects.values_list("wallet_id", "balance"))
    wallets = Wallet.objects.filter(pk__in=set(balances) | set(totals)).select_related("client")
    mismatches = []
    for wallet in wallets.order_by("pk"):
        balance = summed_cents(balances.get(wallet.pk))
        total = summed_cents(totals.get(wallet.pk))
        if balance != total:
            mismatches.append(
                LedgerMismatch(wallet.pk, wallet.client.name, wallet.currency, balance, total)
            )
    return mismatches
