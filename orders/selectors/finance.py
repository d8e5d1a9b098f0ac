"""Money reads of the finance workspace and the API: the refund queue, wallets,
their ledgers and the credit requests waiting for a second approver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from orders.enums import RefundStatus
from orders.errors import NotFound
from orders.models import Order, RefundReview, Wallet, WalletCreditRequest, WalletEntry
from orders.rules import REFUNDABLE_STATUSES, status_values, summed_cents
from orders.selectors.paging import Page, keyset_slice

# Reviews that take an order out of the queue until someone looks again.
_STOPPED = (RefundReview.Decision.HOLD, RefundReview.Decision.REJECT)
CREDIT_QUEUE_LIMIT = 200

# --- Refund queue -------------------------------------------------------------------


@dataclass(frozen=True)
class RefundQueueFilters:
    """The refund queue's filters; empty means no filter."""

    client_id: int | None = None
    currency: str = ""
    older_than_days: int | None = None
    sub_status: str = ""
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    include_stopped: bool = False  # show orders whose latest review is a hold or reject


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    total: Decimal
    orders: int


@dataclass(frozen=True)
class RefundQueue:
    page: Page
    totals: list[CurrencyTotal]


def refund_queue_queryset(*, filters: RefundQueueFilters) -> QuerySet[Order]:
    """Refunds awaiting a finance decision, oldest first, each with its latest review.

    `latest_decision`/`latest_reviewer`/`latest_review_at` come from the order's
    newest RefundReview; an APPROVE there is a pending first approval.
    """
    latest = RefundReview.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-id")
    qs = (
        refunds_owed()
        .select_related("client")
        .annotate(
            latest_decision=Subquery(latest.values("decision")[:1]),
            latest_reviewer=Subquery(latest.values("user__username")[:1]),
            latest_review_at=Subquery(latest.values("created_at")[:1]),
        )
    )
    if filters.client_id is not None:
        qs = qs.filter(client_id=filters.client_id)
    if filters.currency:
        qs = qs.filter(wallet_currency=filters.currency.strip().upper())
    if filters.older_than_days:
        qs = qs.filter(placed_at__lt=timezone.now() - timedelta(days=filters.older_than_days))
    if filters.sub_status:
        qs = qs.filter(sub_status=filters.sub_status)
    if filters.amount_min is not None:
        qs = qs.filter(refund_amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.filter(refund_amount__lte=filters.amount_max)
    if not filters.include_stopped:
        qs = qs.filter(~Exists(_latest_review_stops(OuterRef("pk"))))
    return qs.order_by("placed_at", "id")


def refunds_owed() -> QuerySet[Order]:
    """Orders owing a refund not paid yet: exactly the rows of the partial index
    `order_refund_queue`, so a read of them never touches the orders table's
    other rows."""
    return Order.objects.filter(
        refund_status=RefundStatus.NOT_REFUNDED, status__in=status_values(REFUNDABLE_STATUSES)
    )


def _latest_review_stops(order_id: OuterRef) -> QuerySet[RefundReview]:
    """The order's newest review (by created_at, then id), when it is a hold or a
    reject. Written as "a stopping review with no newer one" rather than as the
    latest decision per row, so that PostgreSQL anti-joins the queue against the
    few stopping reviews once instead of looking up each order's reviews."""
    newer = RefundReview.objects.filter(order_id=OuterRef("order_id")).filter(
        Q(created_at__gt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
    )
    return RefundReview.objects.filter(order_id=order_id, decision__in=_STOPPED).filter(
        ~Exists(newer)
    )


def refund_queue(
    *, filters: RefundQueueFilters, cursor: str | None = None, limit: int = 25
) -> RefundQueue:
    """One page of the refund queue (keyset on placed_at, id, oldest first) and the
    totals per wallet currency of the whole filtered queue, in one grouped query."""
    qs = refund_queue_queryset(filters=filters)
    totals = [
        CurrencyTotal(
            currency=row["wallet_currency"],
            total=summed_cents(row["total"]),
            orders=row["orders"],
        )
        for row in qs.order_by()
        .values("wallet_currency")
        .annotate(total=Sum("refund_amount"), orders=Count("id"))
        .order_by("wallet_currency")
    ]
    rows, next_cursor, _ = keyset_slice(
        qs, field="placed_at", cursor=cursor, limit=limit, newest_first=False
    )
    return RefundQueue(page=Page(items=rows, next_cursor=next_cursor), totals=totals)


# --- Wallets and ledgers ------------------------------------------------------------


def wallets_of_client(*, client_id: int) -> list[Wallet]:
    """The client's wallets, one per currency."""
    return list(Wallet.objects.filter(client_id=client_id).order_by("currency"))


@dataclass(frozen=True)
class LedgerPage:
    entries: list[WalletEntry]
    next_cursor: str | None = None


def wallet_ledger(
    *, client_id: int, currency: str | None = None, cursor: str | None = None, limit: int = 25
) -> LedgerPage:
    """A client's wallet entries, newest first, by keyset on (created_at, id)."""
    qs = WalletEntry.objects.filter(wallet__client_id=client_id).select_related("wallet")
    if currency:
        qs = qs.filter(wallet__currency=currency.strip().upper())
    rows, next_cursor, _ = keyset_slice(qs, field="created_at", cursor=cursor, limit=limit)
    return LedgerPage(entries=rows, next_cursor=next_cursor)


def wallet_list() -> list[Wallet]:
    """Every wallet with its client, by client name then currency."""
    return list(Wallet.objects.select_related("client").order_by("client__name", "currency"))


def wallet_get(*, wallet_id: int) -> Wallet:
    wallet = Wallet.objects.select_related("client").filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    return wallet


def wallet_count() -> int:
    return Wallet.objects.count()


@dataclass(frozen=True)
class LedgerFilters:
    kind: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None


def wallet_entries_queryset(*, wallet_id: int, filters: LedgerFilters) -> QuerySet[WalletEntry]:
    """One wallet's entries, newest first; `balance_after` is the running balance."""
    qs = WalletEntry.objects.filter(wallet_id=wallet_id)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.created_after is not None:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        qs = qs.filter(created_at__lt=filters.created_before)
    return qs.order_by("-created_at", "-id")


def wallet_entry_list(
    *, wallet_id: int, filters: LedgerFilters, cursor: str | None = None, limit: int = 25
) -> LedgerPage:
    """One page of a wallet's ledger by keyset on (created_at, id), newest first."""
    qs = wallet_entries_queryset(wallet_id=wallet_id, filters=filters)
    rows, next_cursor, _ = keyset_slice(qs, field="created_at", cursor=cursor, limit=limit)
    return LedgerPage(entries=rows, next_cursor=next_cursor)


# --- Wallet credit requests (maker-checker on money in) ------------------------------


@dataclass(frozen=True)
class CreditQueue:
    requests: list[WalletCreditRequest]
    total: int


def credit_request_queue(
    *, wallet_id: int | None = None, limit: int = CREDIT_QUEUE_LIMIT
) -> CreditQueue:
    """Pending top-ups and adjustments waiting for a second approver, oldest first,
    with their wallet, client and maker; `total` counts every pending one."""
    qs = WalletCreditRequest.objects.filter(status=WalletCreditRequest.Status.PENDING)
    if wallet_id is not None:
        qs = qs.filter(wallet_id=wallet_id)
    rows = list(
        qs.select_related("wallet__client", "requested_by").order_by("requested_at", "id")[:limit]
    )
    return CreditQueue(requests=rows, total=len(rows) if len(rows) < limit else qs.count())


def credit_request_get(*, request_id: int) -> WalletCreditRequest:
    request = WalletCreditRequest.objects.filter(pk=request_id).first()
    if request is None:
        raise NotFound("No such credit request.")
    return request
