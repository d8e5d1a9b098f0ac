"""Reconciliation of the finance workspace: money in and out per UTC day and
wallet currency, and whether the finished orders of each day add up."""

from __future__ import annotations

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
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from orders.enums import ItemStatus, OrderStatus, RefundStatus, WalletEntryKind
from orders.errors import ValidationFailed
from orders.models import OrderItem, WalletEntry
from orders.rules import (
    REFUNDABLE_STATUSES,
    TERMINAL_STATUSES,
    ZERO,
    status_values,
    summed_cents,
)

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


def _kind_sum(kind: str, sign: int = 1) -> Sum:
    return Sum(F("amount") * sign, filter=Q(kind=kind), output_field=_MONEY)


def reconciliation(*, days: int = 30, now: datetime | None = None) -> list[ReconRow]:
    """Per UTC day and wallet currency over the last `days` days (today included),
    newest day first; two grouped queries."""
    if not 1 <= days <= 366:
        raise ValidationFailed("days must be between 1 and 366.", field="days")
    today = (now or timezone.now()).astimezone(UTC).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    day = TruncDate("created_at", tzinfo=UTC)
    entries = WalletEntry.objects.filter(created_at__gte=start)

    ledger = (
        entries.order_by()
        .annotate(day=day, currency=F("wallet__currency"))
        .values("day", "currency")
        .annotate(
            debits=_kind_sum(WalletEntryKind.ORDER_DEBIT, -1),
            refunds=_kind_sum(WalletEntryKind.REFUND),
            top_ups=_kind_sum(WalletEntryKind.TOP_UP),
            adjustments=_kind_sum(WalletEntryKind.ADJUSTMENT),
        )
    )

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
    checks = (
        entries.filter(kind=WalletEntryKind.ORDER_DEBIT, order__isnull=False)
        .order_by()
        .annotate(day=day, currency=F("wallet__currency"))
        .values("day", "currency")
        .annotate(
            terminal_debits=Sum(-F("amount"), filter=terminal, output_field=_MONEY),
            terminal_refunds=Sum(refunded, filter=terminal, output_field=_MONEY),
            delivered_value=Sum(delivered_value, filter=terminal, output_field=_MONEY),
            awaiting_refund=Count("id", filter=terminal & awaiting),
            open_orders=Count("id", filter=~terminal),
        )
    )
    checked: dict[Any, dict[str, Any]] = {(c["day"], c["currency"]): dict(c) for c in checks}

    rows = []
    for line in ledger:
        check: dict[str, Any] = checked.get((line["day"], line["currency"])) or {}
        debits = summed_cents(check.get("terminal_debits"))
        refunds = summed_cents(check.get("terminal_refunds"))
        delivered = summed_cents(check.get("delivered_value"))
        rows.append(
            ReconRow(
                day=line["day"],
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
        )
    rows.sort(key=lambda r: (-r.day.toordinal(), r.currency))
    return rows
