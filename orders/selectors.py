"""Read queries shared by the API and the dashboard.

Selectors own `select_related`/`only()` so no caller can cause N+1 queries,
and paginate by keyset on (placed_at, id): the cost of a page does not grow
with how deep it is, and nothing counts the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.db.models import F, Model, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils import timezone

from orders.enums import InventoryStatus, OrderStatus, SubStatus
from orders.errors import ValidationFailed
from orders.models import Order, Voucher

# The largest primary key a cursor may name (a PostgreSQL bigint).
MAX_ROW_ID = 2**63 - 1

# --- Inventory ---------------------------------------------------------------


def allocatable_vouchers(*, product_id: int, denomination: Decimal) -> QuerySet[Voucher]:
    """AVAILABLE, unexpired units of one product and denomination, earliest expiry first."""
    return (
        Voucher.objects.filter(
            product_id=product_id, denomination=denomination, status=InventoryStatus.AVAILABLE
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .order_by("expires_at", "id")
    )


def available_stock(*, product_id: int, denomination: Decimal) -> int:
    """How many units inventory can deliver now."""
    return allocatable_vouchers(product_id=product_id, denomination=denomination).count()


# --- Orders ------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilters:
    """Everything the order lists can filter on; empty means no filter."""

    client_id: int | None = None
    statuses: Sequence[OrderStatus] = ()
    sub_statuses: Sequence[SubStatus] = ()
    product_id: int | None = None
    reference_code: str = ""
    placed_after: datetime | None = None
    placed_before: datetime | None = None
    search: str = ""


# A cursor is "n" (next) or "p" (prev), microseconds since the Unix epoch in
# UTC, ".", and the row id: every string of this shape is a position, so the
# API can declare the pattern and a hand-made cursor never reaches the database
# with a time or an id it cannot hold (both are clamped to what exists).
CURSOR_PATTERN = r"^[np]-?[0-9]{1,19}\.[0-9]{1,19}$"
CURSOR_RE = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIRST_MICROS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_LAST_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_DIRECTIONS: dict[str, Literal["next", "prev"]] = {"n": "next", "p": "prev"}


@dataclass(frozen=True)
class Cursor:
    """A position in a list sorted by (timestamp, id); opaque to callers."""

    at: datetime
    id: int
    direction: Literal["next", "prev"] = "next"

    def encode(self) -> str:
        micros = (self.at - _EPOCH) // _MICROSECOND
        return f"{self.direction[0]}{micros}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The position in `token`, which a client may have written by hand."""
        if not CURSOR_RE.fullmatch(token):
            raise ValidationFailed(
                "cursor is not valid; use the one a page returned.", field="cursor"
            )
        micros, pk = token[1:].split(".")
        # Beyond the calendar or the id range, no row lies further out.
        clamped = min(max(int(micros), _FIRST_MICROS), _LAST_MICROS)
        return cls(
            at=_EPOCH + clamped * _MICROSECOND,
            id=min(int(pk), MAX_ROW_ID),
            direction=_DIRECTIONS[token[0]],
        )


@dataclass(frozen=True)
class Page:
    items: list[Order]
    next_cursor: str | None = None
    prev_cursor: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def _search_q(term: str) -> Q:
    term = term.strip()
    query = Q(reference_code=term) | Q(customer_email=term.lower()) | Q(customer_phone=term)
    digits = term.lstrip("#")
    if digits.isdigit() and len(digits) < 19:
        query |= Q(pk=int(digits)) | Q(transaction_id=int(digits))
    return query


def order_queryset(*, filters: OrderFilters) -> QuerySet[Order]:
    """Orders matching `filters`, with product and client joined."""
    qs = Order.objects.select_related("product", "client")
    if filters.client_id is not None:
        qs = qs.filter(client_id=filters.client_id)
    if filters.statuses:
        qs = qs.filter(status__in=[str(s) for s in filters.statuses])
    if filters.sub_statuses:
        qs = qs.filter(sub_status__in=[str(s) for s in filters.sub_statuses])
    if filters.product_id is not None:
        qs = qs.filter(product_id=filters.product_id)
    if filters.reference_code:
        qs = qs.filter(reference_code=filters.reference_code)
    if filters.placed_after is not None:
        qs = qs.filter(placed_at__gte=filters.placed_after)
    if filters.placed_before is not None:
        qs = qs.filter(placed_at__lt=filters.placed_before)
    if filters.search:
        qs = qs.filter(_search_q(filters.search))
    return qs


def order_list(
    *,
    filters: OrderFilters,
    cursor: str | None = None,
    limit: int = 25,
    newest_first: bool = True,
) -> Page:
    """One page of orders by keyset on (placed_at, id), with next/prev cursors."""
    rows, next_cursor, prev_cursor = keyset_slice(
        order_queryset(filters=filters),
        field="placed_at",
        cursor=cursor,
        limit=limit,
        newest_first=newest_first,
    )
    return Page(items=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def keyset_slice[M: Model](
    qs: QuerySet[M], *, field: str, cursor: str | None, limit: int, newest_first: bool = True
) -> tuple[list[M], str | None, str | None]:
    """One page of `qs` by keyset on (`field`, id), with next/prev cursors.

    The cost of a page does not depend on its depth: the position is a WHERE
    on the (field, id) index, never an OFFSET, and nothing is counted.
    """
    position = Cursor.decode(cursor) if cursor else None
    # Walking "prev" reverses the sort, then the page is flipped back.
    forward = position is None or position.direction == "next"
    descending = newest_first == forward
    if position is not None:
        # A row comparison, (field, id) < (at, id), is one range on the
        # (field, id) index. The equivalent OR of two conditions is not: at
        # 1,000,000 orders PostgreSQL filtered 250,000 index rows for page 10,000.
        after = TupleLessThan if descending else TupleGreaterThan
        qs = qs.filter(after(Tuple(F(field), F("id")), (position.at, position.id)))
    ordering = [f"-{field}", "-id"] if descending else [field, "id"]
    rows = list(qs.order_by(*ordering)[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return [], None, None
    more_after = has_more if forward else position is not None
    more_before = position is not None if forward else has_more
    first, last = rows[0], rows[-1]
    return (
        rows,
        Cursor(getattr(last, field), last.pk, "next").encode() if more_after else None,
        Cursor(getattr(first, field), first.pk, "prev").encode() if more_before else None,
    )


# --- Dashboard ---------------------------------------------------------------
# Read queries of the staff dashboard (owner: dashboard). Imports are kept in
# this section so it stays self-contained while others edit the file.

import statistics  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

from django.db import connection  # noqa: E402
from django.db.models import (  # noqa: E402
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    FloatField,
    Func,
    Prefetch,
    Sum,
)
from django.db.models.functions import TruncHour  # noqa: E402

from orders.enums import TERMINAL_STATUSES, ProductKind, RefundStatus  # noqa: E402
from orders.errors import NotFound  # noqa: E402
from orders.models import (  # noqa: E402
    AuditEvent,
    DeliveryEmail,
    Product,
    StatusChange,
    WebhookDelivery,
)

# Sub-statuses that mean "went through the vendor": the DELAYED delivery time.
VENDOR_SUB_STATUSES: tuple[SubStatus, ...] = (
    SubStatus.VENDOR_ORDER_PENDING,
    SubStatus.VENDOR_ORDER_CREATED,
    SubStatus.VENDOR_VOUCHER_FETCHED,
    SubStatus.VENDOR_ORDER_FAILED,
    SubStatus.PENDING_REPROCESS,
    SubStatus.REPROCESS_EXPIRED,
)
MEDIAN_SAMPLE = 5000


def order_row_get(*, order_id: int) -> Order:
    """One order as a list row (product and client joined), or NotFound."""
    order = order_queryset(filters=OrderFilters()).filter(pk=order_id).first()
    if order is None:
        raise NotFound()
    return order


@dataclass(frozen=True)
class OrderDetail:
    order: Order
    items: list[Any]
    timeline: list[StatusChange]
    webhook_deliveries: list[WebhookDelivery]
    audit_events: list[AuditEvent]
    delivery_emails: list[DeliveryEmail]


def order_detail(*, order_id: int, audit_limit: int = 200, email_limit: int = 20) -> OrderDetail:
    """An order with its items, timeline, webhook deliveries, delivery e-mails (newest
    first) and audit trail; a fixed number of queries whatever the order's size."""
    order = (
        Order.objects.select_related("product", "client", "transaction", "refund_entry", "wallet")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound()
    items = list(order.items.select_related("voucher").order_by("position"))
    timeline = list(order.status_changes.select_related("actor_user").order_by("created_at", "id"))
    deliveries = list(
        order.webhook_deliveries.select_related("endpoint")
        .prefetch_related(Prefetch("attempt_log"))
        .order_by("created_at", "id")
    )
    audit = list(
        AuditEvent.objects.filter(order_id=order.pk)
        .select_related("actor_user", "voucher")
        .order_by("-created_at", "-id")[:audit_limit]
    )
    emails = list(order.delivery_emails.order_by("-created_at", "-id")[:email_limit])
    return OrderDetail(
        order=order,
        items=items,
        timeline=timeline,
        webhook_deliveries=deliveries,
        audit_events=audit,
        delivery_emails=emails,
    )


def dashboard_voucher_get(*, voucher_id: int) -> Voucher:
    """A voucher that belongs to an order item (its order joined), or NotFound."""
    voucher = (
        Voucher.objects.select_related("order_item__order")
        .filter(pk=voucher_id, order_item__isnull=False)
        .first()
    )
    if voucher is None:
        raise NotFound()
    return voucher


@dataclass(frozen=True)
class Overview:
    today_by_status: list[tuple[str, int]]
    success_rate: float | None
    delivered_7d: int
    terminal_7d: int
    median_delivery_seconds: float | None
    refund_backlog: Sequence[Mapping[str, Any]]
    low_stock: list[dict[str, Any]]
    orders_per_hour: Sequence[Mapping[str, Any]]
    deliveries_by_product: list[tuple[str, int]]
    since: datetime
    now: datetime


class _PercentileCont(Aggregate):
    """PostgreSQL's exact median of an expression."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _median_delivery_seconds(*, since: datetime) -> float | None:
    delivered = Order.objects.filter(
        status=OrderStatus.DELIVERED, placed_at__gte=since, delivered_at__isnull=False
    )
    if connection.vendor == "postgresql":
        seconds = Func(
            ExpressionWrapper(F("delivered_at") - F("placed_at"), output_field=DurationField()),
            template="EXTRACT(EPOCH FROM %(expressions)s)",
            output_field=FloatField(),
        )
        median = delivered.aggregate(median=_PercentileCont(seconds))["median"]
        return float(median) if median is not None else None
    # Other databases: the median of the latest MEDIAN_SAMPLE deliveries, in Python.
    pairs = delivered.order_by("-placed_at").values_list("placed_at", "delivered_at")[
        :MEDIAN_SAMPLE
    ]
    durations = [(done - placed).total_seconds() for placed, done in pairs if done is not None]
    return statistics.median(durations) if durations else None


def _low_stock() -> list[dict[str, Any]]:
    now = timezone.now()
    usable = Q(vouchers__status=InventoryStatus.AVAILABLE) & (
        Q(vouchers__expires_at__isnull=True) | Q(vouchers__expires_at__gt=now)
    )
    stocked = {
        (row["id"], row["vouchers__denomination"]): row
        for row in Product.objects.filter(is_active=True, vouchers__isnull=False)
        .values("id", "name", "currency", "low_stock_threshold", "vouchers__denomination")
        .annotate(available=Count("vouchers", filter=usable))
    }
    # Listed denominations never stocked count as zero (top-ups have no vouchers).
    for product in Product.objects.filter(is_active=True).exclude(kind=ProductKind.MOBILE_TOPUP):
        for value in product.denomination_list:
            stocked.setdefault(
                (product.pk, value),
                {
                    "id": product.pk,
                    "name": product.name,
                    "currency": product.currency,
                    "low_stock_threshold": product.low_stock_threshold,
                    "vouchers__denomination": value,
                    "available": 0,
                },
            )
    rows = [
        {
            "product_id": row["id"],
            "name": row["name"],
            "currency": row["currency"],
            "denomination": row["vouchers__denomination"],
            "available": row["available"],
            "threshold": row["low_stock_threshold"],
        }
        for row in stocked.values()
        if row["available"] < row["low_stock_threshold"]
    ]
    return sorted(rows, key=lambda r: (r["available"], r["name"], r["denomination"]))


def dashboard_overview(*, now: datetime | None = None, days: int = 7) -> Overview:
    """Today's orders, the last `days` days' delivery rate, median delivery time and
    charts, the refund backlog and low stock; aggregated in the database."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today_counts = dict(
        Order.objects.filter(placed_at__gte=today)
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    recent = Order.objects.filter(placed_at__gte=since)
    totals = recent.aggregate(
        delivered=Count("id", filter=Q(status=OrderStatus.DELIVERED)),
        terminal=Count("id", filter=Q(status__in=[str(s) for s in TERMINAL_STATUSES])),
    )
    backlog = list(
        Order.objects.filter(refund_status=RefundStatus.NOT_REFUNDED)
        .values("currency")
        .annotate(count=Count("id"), value=Sum("refund_amount"))
        .order_by("currency")
    )
    per_hour = list(
        recent.annotate(hour=TruncHour("placed_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .order_by("hour", "status")
    )
    by_product = list(
        recent.filter(status__in=[OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED])
        .values("product_name")
        .annotate(n=Count("id"))
        .order_by("-n", "product_name")
        .values_list("product_name", "n")[:12]
    )
    return Overview(
        today_by_status=[(str(s), today_counts.get(str(s), 0)) for s in OrderStatus],
        success_rate=(totals["delivered"] / totals["terminal"]) if totals["terminal"] else None,
        delivered_7d=totals["delivered"],
        terminal_7d=totals["terminal"],
        median_delivery_seconds=_median_delivery_seconds(since=since),
        refund_backlog=backlog,
        low_stock=_low_stock(),
        orders_per_hour=per_hour,
        deliveries_by_product=by_product,
        since=since,
        now=now,
    )


@dataclass(frozen=True)
class AuditFilters:
    user_id: int | None = None
    action: str = ""
    order_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEvent]
    next_cursor: str | None = None
    prev_cursor: str | None = None


def audit_event_list(
    *, filters: AuditFilters, cursor: str | None = None, limit: int = 50
) -> AuditPage:
    """One page of audit events, newest first, by keyset on (created_at, id)."""
    qs = AuditEvent.objects.select_related("actor_user", "order", "voucher")
    if filters.user_id is not None:
        qs = qs.filter(actor_user_id=filters.user_id)
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.order_id is not None:
        qs = qs.filter(order_id=filters.order_id)
    if filters.created_after is not None:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        qs = qs.filter(created_at__lt=filters.created_before)
    rows, next_cursor, prev_cursor = keyset_slice(
        qs, field="created_at", cursor=cursor, limit=limit
    )
    return AuditPage(items=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def audit_actions() -> list[str]:
    """The distinct audit actions, for the audit log's filter."""
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())


# --- API (orders/api) ----------------------------------------------------------
# Read helpers of the JSON API. Every query is scoped to one client where the
# data is a client's, and each list is one query (no N+1).

from django.db.models import Count as _Count  # noqa: E402

from orders.models import Product as _Product  # noqa: E402
from orders.models import Wallet, WalletEntry  # noqa: E402


def order_for_client(*, client_id: int, order_id: int) -> Order | None:
    """One of the client's orders with its items, or None (another client's too)."""
    return (
        Order.objects.filter(client_id=client_id, pk=order_id)
        .select_related("product")
        .prefetch_related("items")
        .first()
    )


def active_products(*, product_id: int | None = None) -> list[_Product]:
    """Products a client may buy, by name (one product when `product_id` is given)."""
    qs = _Product.objects.filter(is_active=True).order_by("name", "id")
    if product_id is not None:
        qs = qs.filter(pk=product_id)
    return list(qs)


def stock_by_denomination(*, product_ids: Sequence[int]) -> dict[int, dict[Decimal, int]]:
    """Allocatable units per product and denomination, in one aggregate query."""
    rows = (
        Voucher.objects.filter(product_id__in=list(product_ids), status=InventoryStatus.AVAILABLE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .values("product_id", "denomination")
        .annotate(units=_Count("id"))
        .order_by()
    )
    stock: dict[int, dict[Decimal, int]] = {}
    for row in rows:
        stock.setdefault(row["product_id"], {})[Decimal(row["denomination"])] = row["units"]
    return stock


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


# --- Inventory: stock and expiry (owner: inventory) ---------------------------
# Imports are local to this section so it stays a self-contained block of a shared file.

_SECRET_COLUMNS = ("card_number", "pin_code", "voucher_reference_number", "claim_url")


@dataclass(frozen=True)
class StockRow:
    """Stock of one product and denomination, as the inventory admin sees it.

    `available` counts AVAILABLE units that have not expired (what fulfilment can
    deliver); `expired` counts AVAILABLE units past their expiry, waiting for an
    admin. `delivered` includes COMPLETED units.
    """

    product_id: int
    product_name: str
    currency: str
    denomination: Decimal
    available: int
    expired: int
    allocated: int
    delivered: int
    blocked: int
    revoked: int
    next_expiry: datetime | None
    sold_7d: int
    days_of_cover: Decimal | None
    low_stock_threshold: int

    @property
    def low_stock(self) -> bool:
        return self.available < self.low_stock_threshold


def stock_overview() -> list[StockRow]:
    """Stock per product x denomination in one grouped query; listed denominations
    of active products appear even with no stock (that is when they matter)."""
    from datetime import timedelta

    from django.db.models import Count, Min

    from orders.models import Product

    now = timezone.now()
    live = Q(status=InventoryStatus.AVAILABLE) & (
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    groups = (
        Voucher.objects.order_by()
        .values("product_id", "denomination")
        .annotate(
            available=Count("id", filter=live),
            expired=Count("id", filter=Q(status=InventoryStatus.AVAILABLE, expires_at__lte=now)),
            allocated=Count("id", filter=Q(status=InventoryStatus.ALLOCATED)),
            delivered=Count(
                "id",
                filter=Q(status__in=[InventoryStatus.DELIVERED, InventoryStatus.COMPLETED]),
            ),
            blocked=Count("id", filter=Q(status=InventoryStatus.BLOCKED)),
            revoked=Count("id", filter=Q(status=InventoryStatus.REVOKED)),
            next_expiry=Min("expires_at", filter=live),
            sold_7d=Count("id", filter=Q(delivered_at__gte=now - timedelta(days=7))),
        )
    )
    counts: dict[tuple[int, Decimal], dict[str, Any]] = {
        (g["product_id"], g["denomination"]): dict(g) for g in groups
    }
    products = Product.objects.filter(
        Q(is_active=True) | Q(pk__in={product_id for product_id, _ in counts})
    ).only(
        "id",
        "name",
        "currency",
        "denominations",
        "min_denomination",
        "max_denomination",
        "low_stock_threshold",
        "is_active",
    )
    keys = set(counts)
    for product in products:
        if product.is_active and not product.is_range:
            keys.update((product.pk, value) for value in product.denomination_list)
    by_id = {product.pk: product for product in products}
    rows = []
    for product_id, denomination in keys:
        owner = by_id.get(product_id)
        if owner is None:
            continue
        group = counts.get((product_id, denomination), {})
        available, sold = group.get("available", 0), group.get("sold_7d", 0)
        cover = (Decimal(available * 7) / sold).quantize(Decimal("0.1")) if sold else None
        rows.append(
            StockRow(
                product_id=product_id,
                product_name=owner.name,
                currency=owner.currency,
                denomination=denomination,
                available=available,
                expired=group.get("expired", 0),
                allocated=group.get("allocated", 0),
                delivered=group.get("delivered", 0),
                blocked=group.get("blocked", 0),
                revoked=group.get("revoked", 0),
                next_expiry=group.get("next_expiry"),
                sold_7d=sold,
                days_of_cover=cover,
                low_stock_threshold=owner.low_stock_threshold,
            )
        )
    rows.sort(key=lambda row: (row.product_name.lower(), row.product_id, row.denomination))
    return rows


def expiring_vouchers(*, within_days: int) -> QuerySet[Voucher]:
    """AVAILABLE vouchers expiring within `within_days` (or already expired, still
    AVAILABLE), earliest first, with the product joined and no secret column loaded."""
    from datetime import timedelta

    if within_days < 0:
        raise ValidationFailed("within_days must be 0 or more.", field="within_days")
    return (
        Voucher.objects.filter(
            status=InventoryStatus.AVAILABLE,
            expires_at__isnull=False,
            expires_at__lte=timezone.now() + timedelta(days=within_days),
        )
        .select_related("product")
        .defer(*_SECRET_COLUMNS)
        .order_by("expires_at", "id")
    )


# --- Finance: refund queue, wallets and ledgers (owner: finance) --------------
# Imports are local to this section so it stays a self-contained block of a shared file.


from django.db.models import OuterRef as _OuterRef  # noqa: E402
from django.db.models import Subquery as _Subquery  # noqa: E402
from django.db.models import Sum as _Sum  # noqa: E402

from orders.models import RefundReview as _RefundReview  # noqa: E402

REFUND_QUEUE_STATUSES = (OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.PARTIALLY_DELIVERED)
_STOPPED = (_RefundReview.Decision.HOLD, _RefundReview.Decision.REJECT)


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
    latest = _RefundReview.objects.filter(order=_OuterRef("pk")).order_by("-created_at", "-id")
    qs = (
        Order.objects.filter(
            refund_status=RefundStatus.NOT_REFUNDED,
            status__in=[str(s) for s in REFUND_QUEUE_STATUSES],
        )
        .select_related("client")
        .annotate(
            latest_decision=_Subquery(latest.values("decision")[:1]),
            latest_reviewer=_Subquery(latest.values("user__username")[:1]),
            latest_review_at=_Subquery(latest.values("created_at")[:1]),
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
        qs = qs.filter(Q(latest_decision__isnull=True) | ~Q(latest_decision__in=_STOPPED))
    return qs.order_by("placed_at", "id")


def refund_queue(
    *, filters: RefundQueueFilters, cursor: str | None = None, limit: int = 25
) -> RefundQueue:
    """One page of the refund queue (keyset on placed_at, id, oldest first) and the
    totals per wallet currency of the whole filtered queue, in one grouped query."""
    qs = refund_queue_queryset(filters=filters)
    totals = [
        CurrencyTotal(
            currency=row["wallet_currency"],
            # SQLite sums decimals as floats: round to the cent every amount is in.
            total=Decimal(str(row["total"] or 0)).quantize(Decimal("0.01")),
            orders=row["orders"],
        )
        for row in qs.order_by()
        .values("wallet_currency")
        .annotate(total=_Sum("refund_amount"), orders=_Count("id"))
        .order_by("wallet_currency")
    ]
    rows, next_cursor, _ = keyset_slice(
        qs, field="placed_at", cursor=cursor, limit=limit, newest_first=False
    )
    return RefundQueue(page=Page(items=rows, next_cursor=next_cursor), totals=totals)


def wallet_list() -> list[Wallet]:
    """Every wallet with its client, by client name then currency."""
    return list(Wallet.objects.select_related("client").order_by("client__name", "currency"))


def wallet_get(*, wallet_id: int) -> Wallet:
    wallet = Wallet.objects.select_related("client").filter(pk=wallet_id).first()
    if wallet is None:
        raise NotFound("No such wallet.")
    return wallet


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


# --- Reconciliation: money in and out per day and currency (owner: finance) -----
# Imports are local to this section so it stays a self-contained block of a shared file.

from datetime import UTC as _UTC  # noqa: E402
from datetime import date as _date  # noqa: E402

from django.db.models import Case as _Case  # noqa: E402
from django.db.models import DecimalField as _DecimalField  # noqa: E402
from django.db.models import ExpressionWrapper as _ExpressionWrapper  # noqa: E402
from django.db.models import F as _F  # noqa: E402
from django.db.models import IntegerField as _IntegerField  # noqa: E402
from django.db.models import Value as _Value  # noqa: E402
from django.db.models import When as _When  # noqa: E402
from django.db.models.functions import Coalesce as _Coalesce  # noqa: E402
from django.db.models.functions import TruncDate as _TruncDate  # noqa: E402

from orders.enums import TERMINAL_STATUSES as _TERMINAL  # noqa: E402
from orders.enums import ItemStatus as _ItemStatus  # noqa: E402
from orders.enums import RefundStatus as _RefundStatus  # noqa: E402
from orders.enums import WalletEntryKind as _Kind  # noqa: E402
from orders.models import OrderItem as _OrderItem  # noqa: E402

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")
_MONEY = _DecimalField(max_digits=20, decimal_places=2)
_REFUNDABLE = [
    str(OrderStatus.FAILED),
    str(OrderStatus.CANCELLED),
    str(OrderStatus.PARTIALLY_DELIVERED),
]


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

    day: _date
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
        return self.difference != _ZERO


def _cents(value: object) -> Decimal:
    # SQLite sums decimals as floats: round to the cent every amount is written in.
    return Decimal(str(value or 0)).quantize(_CENT)


def reconciliation(*, days: int = 30, now: datetime | None = None) -> list[ReconRow]:
    """Per UTC day and wallet currency over the last `days` days (today included),
    newest day first; two grouped queries."""
    if not 1 <= days <= 366:
        raise ValidationFailed("days must be between 1 and 366.", field="days")
    today = (now or timezone.now()).astimezone(_UTC).date()
    start = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), tzinfo=_UTC)
    day = _TruncDate("created_at", tzinfo=_UTC)
    entries = WalletEntry.objects.filter(created_at__gte=start)

    def kind_sum(kind: str, sign: int = 1) -> _Sum:
        return _Sum(_F("amount") * sign, filter=Q(kind=kind), output_field=_MONEY)

    ledger = (
        entries.order_by()
        .annotate(day=day, currency=_F("wallet__currency"))
        .values("day", "currency")
        .annotate(
            debits=kind_sum(_Kind.ORDER_DEBIT, -1),
            refunds=kind_sum(_Kind.REFUND),
            top_ups=kind_sum(_Kind.TOP_UP),
            adjustments=kind_sum(_Kind.ADJUSTMENT),
        )
    )

    # The charged value of an order's delivered units: all of it when delivered;
    # what is left after the refund owed once one is scheduled; pro rata of the
    # delivered items while a refundable order has no refund scheduled yet.
    delivered_items = (
        _OrderItem.objects.filter(order=_OuterRef("order_id"), status=_ItemStatus.DELIVERED)
        .order_by()
        .values("order_id")
        .annotate(n=_Count("id"))
        .values("n")
    )
    delivered_value = _Case(
        _When(order__status=OrderStatus.DELIVERED, then=_F("order__wallet_amount")),
        _When(
            order__refund_status__in=[_RefundStatus.NOT_REFUNDED, _RefundStatus.REFUNDED],
            then=_F("order__wallet_amount") - _F("order__refund_amount"),
        ),
        default=_ExpressionWrapper(
            _F("order__wallet_amount")
            * _Coalesce(_Subquery(delivered_items, output_field=_IntegerField()), _Value(0))
            / _F("order__quantity"),
            output_field=_MONEY,
        ),
        output_field=_MONEY,
    )
    refunded = _Case(
        _When(order__refund_status=_RefundStatus.REFUNDED, then=_F("order__refund_amount")),
        default=_Value(_ZERO),
        output_field=_MONEY,
    )
    terminal = Q(order__status__in=[str(s) for s in _TERMINAL])
    awaiting = Q(order__refund_status=_RefundStatus.NOT_REFUNDED) | Q(
        order__refund_status=_RefundStatus.NONE, order__status__in=_REFUNDABLE
    )
    checks = (
        entries.filter(kind=_Kind.ORDER_DEBIT, order__isnull=False)
        .order_by()
        .annotate(day=day, currency=_F("wallet__currency"))
        .values("day", "currency")
        .annotate(
            terminal_debits=_Sum(-_F("amount"), filter=terminal, output_field=_MONEY),
            terminal_refunds=_Sum(refunded, filter=terminal, output_field=_MONEY),
            delivered_value=_Sum(delivered_value, filter=terminal, output_field=_MONEY),
            awaiting_refund=_Count("id", filter=terminal & awaiting),
            open_orders=_Count("id", filter=~terminal),
        )
    )
    checked: dict[Any, dict[str, Any]] = {(c["day"], c["currency"]): dict(c) for c in checks}

    rows = []
    for line in ledger:
        check: dict[str, Any] = checked.get((line["day"], line["currency"])) or {}
        debits = _cents(check.get("terminal_debits"))
        refunds = _cents(check.get("terminal_refunds"))
        delivered = _cents(check.get("delivered_value"))
        rows.append(
            ReconRow(
                day=line["day"],
                currency=line["currency"],
                debits=_cents(line["debits"]),
                refunds=_cents(line["refunds"]),
                top_ups=_cents(line["top_ups"]),
                adjustments=_cents(line["adjustments"]),
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


def wallet_count() -> int:
    return Wallet.objects.count()


# --- Wallet credit requests (maker-checker on money in) ---------------------------

from orders.models import WalletCreditRequest as _WalletCreditRequest  # noqa: E402

CREDIT_QUEUE_LIMIT = 200


@dataclass(frozen=True)
class CreditQueue:
    requests: list[_WalletCreditRequest]
    total: int


def credit_request_queue(
    *, wallet_id: int | None = None, limit: int = CREDIT_QUEUE_LIMIT
) -> CreditQueue:
    """Pending top-ups and adjustments waiting for a second approver, oldest first,
    with their wallet, client and maker; `total` counts every pending one."""
    qs = _WalletCreditRequest.objects.filter(status=_WalletCreditRequest.Status.PENDING)
    if wallet_id is not None:
        qs = qs.filter(wallet_id=wallet_id)
    rows = list(
        qs.select_related("wallet__client", "requested_by").order_by("requested_at", "id")[:limit]
    )
    return CreditQueue(requests=rows, total=len(rows) if len(rows) < limit else qs.count())


def credit_request_get(*, request_id: int) -> _WalletCreditRequest:
    request = _WalletCreditRequest.objects.filter(pk=request_id).first()
    if request is None:
        raise NotFound("No such credit request.")
    return request
