"""The dashboard's rollups (orders/models/rollups.py), refreshed from the raw rows.

`rollups_refresh` is run by the worker's maintenance sweep (and at the end of
`seed_demo` and `bench/generate.py`). Each run finds the buckets whose raw rows
changed since the previous run started (minus `MARGIN`, for transactions that
committed late) and recomputes those buckets wholesale from the raw rows:

- an order's UTC hour of `placed_at` (`Order.updated_at` finds it);
- a voucher's product and denomination, and its UTC day of `delivered_at`
  (`Voucher.updated_at`);
- a UTC day of the ledger: the day of a new entry, or the day an updated
  order was debited (`WalletEntry.created_at`, `Order.updated_at`);
- every wallet's balance (a small table, copied each run).

Nothing on the order path writes a rollup, so orders never queue on a shared
counter row. A run is idempotent; it reads one snapshot (REPEATABLE READ on
PostgreSQL, so balances and ledger sums are of the same moment) and holds a
transaction-level advisory lock: a second worker running at the same time skips
its turn instead of waiting. `rollups_differences` recomputes every bucket for
`manage.py check_rollups`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Min, Model, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from orders.enums import InventoryStatus, WalletEntryKind
from orders.models import Order, Voucher, Wallet, WalletEntry
from orders.models.rollups import (
    EXPIRED_BUCKET,
    LedgerDayRollup,
    OrderHourRollup,
    OrderProductDayRollup,
    OrderStatusHourRollup,
    ReconDayRollup,
    RollupState,
    VoucherRollup,
    VoucherSoldDayRollup,
    WalletBalanceRollup,
)
from orders.rules import allocatable_q, expired_stock_q, summed_cents
from orders.selectors.reconciliation import ledger_sums, order_checks
from orders.selectors.rollups import STATE

logger = logging.getLogger(__name__)

# Rows whose transaction committed this long after their `updated_at` are still
# found by the next run.
MARGIN = timedelta(minutes=5)
_LOCK_KEY = 0x726F6C6C  # pg_try_advisory_xact_lock key of the refresh
_CHUNK = 200  # buckets per recompute statement
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)

ROLLUP_MODELS: tuple[type[Model], ...] = (
    OrderHourRollup,
    OrderStatusHourRollup,
    OrderProductDayRollup,
    VoucherRollup,
    VoucherSoldDayRollup,
    LedgerDayRollup,
    ReconDayRollup,
    WalletBalanceRollup,
)


# --- Rows from the raw tables -------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ranges_q(field: str, starts: Iterable[datetime], width: timedelta) -> Q:
    """`field` in any of the half-open ranges [start, start + width)."""
    q = Q(pk__in=[])
    for start in starts:
        q |= Q(**{f"{field}__gte": start, f"{field}__lt": start + width})
    return q


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _order_hour_query(hours: Sequence[datetime] | None = None) -> QuerySet[Any]:
    qs = Order.objects.order_by()
    if hours is not None:
        qs = qs.filter(_ranges_q("placed_at", hours, _HOUR))
    return (
        qs.annotate(hour=TruncHour("placed_at", tzinfo=UTC))
        .values("hour", "status", "product_id", "product_name")
        .annotate(n=Count("id"))
    )


def order_hour_rows(hours: Sequence[datetime] | None = None) -> list[OrderHourRollup]:
    """Orders per UTC hour of placement, status and product (`hours`: only those)."""
    rows = _order_hour_query(hours)
    return [
        OrderHourRollup(
            hour=row["hour"].astimezone(UTC),
            status=row["status"],
            product_id=row["product_id"],
            product_name=row["product_name"],
            orders=row["n"],
        )
        for row in rows
    ]


def status_hour_rows(base: Iterable[OrderHourRollup]) -> list[OrderStatusHourRollup]:
    """`base` rows summed per hour and status."""
    sums: dict[tuple[datetime, str], int] = defaultdict(int)
    for row in base:
        sums[(row.hour, row.status)] += row.orders
    return [OrderStatusHourRollup(hour=h, status=s, orders=n) for (h, s), n in sums.items()]


def product_day_rows(base: Iterable[OrderHourRollup]) -> list[OrderProductDayRollup]:
    """`base` rows summed per UTC day, status and product."""
    sums: dict[tuple[date, str, int, str], int] = defaultdict(int)
    for row in base:
        sums[(row.hour.astimezone(UTC).date(), row.status, row.product_id, row.product_name)] += (
            row.orders
        )
    return [
        OrderProductDayRollup(day=d, status=s, product_id=p, product_name=name, orders=n)
        for (d, s, p, name), n in sums.items()
    ]


def _groups_q(groups: Iterable[tuple[int, Decimal]]) -> Q:
    q = Q(pk__in=[])
    for product_id, denomination in groups:
        q |= Q(product_id=product_id, denomination=denomination)
    return q


def voucher_rows(
    groups: Sequence[tuple[int, Decimal]] | None = None, *, now: datetime
) -> list[VoucherRollup]:
    """Units per product, denomination and status; AVAILABLE units split into the
    allocatable ones at `now` (with their next expiry) and the expired ones
    (`EXPIRED_BUCKET`). `groups`: only those products and denominations."""
    qs = Voucher.objects.order_by()
    if groups is not None:
        qs = qs.filter(_groups_q(groups))
    rows = [
        VoucherRollup(
            product_id=row["product_id"],
            denomination=row["denomination"],
            status=row["status"],
            units=row["n"],
        )
        for row in qs.exclude(status=InventoryStatus.AVAILABLE)
        .values("product_id", "denomination", "status")
        .annotate(n=Count("id"))
    ]
    rows += [
        VoucherRollup(
            product_id=row["product_id"],
            denomination=row["denomination"],
            status=InventoryStatus.AVAILABLE,
            units=row["n"],
            next_expiry=row["next_expiry"],
        )
        for row in qs.filter(allocatable_q(now=now))
        .values("product_id", "denomination")
        .annotate(n=Count("id"), next_expiry=Min("expires_at"))
    ]
    rows += [
        VoucherRollup(
            product_id=row["product_id"],
            denomination=row["denomination"],
            status=EXPIRED_BUCKET,
            units=row["n"],
        )
        for row in qs.filter(expired_stock_q(now=now))
        .values("product_id", "denomination")
        .annotate(n=Count("id"))
    ]
    return rows


def voucher_sold_rows(
    keys: Sequence[tuple[int, Decimal, date]] | None = None,
) -> list[VoucherSoldDayRollup]:
    """Units delivered per product, denomination and UTC day of `delivered_at`."""
    rows = _voucher_sold_query(keys)
    return [
        VoucherSoldDayRollup(
            product_id=row["product_id"],
            denomination=row["denomination"],
            day=_as_date(row["day"]),
            units=row["n"],
        )
        for row in rows
    ]


def _voucher_sold_query(keys: Sequence[tuple[int, Decimal, date]] | None = None) -> QuerySet[Any]:
    qs = Voucher.objects.order_by().filter(delivered_at__isnull=False)
    if keys is not None:
        q = Q(pk__in=[])
        for product_id, denomination, day in keys:
            start = _day_start(day)
            q |= Q(
                product_id=product_id,
                denomination=denomination,
                delivered_at__gte=start,
                delivered_at__lt=start + _DAY,
            )
        qs = qs.filter(q)
    return (
        qs.annotate(day=TruncDate("delivered_at", tzinfo=UTC))
        .values("product_id", "denomination", "day")
        .annotate(n=Count("id"))
    )


def _entries(days: Sequence[date] | None) -> QuerySet[WalletEntry]:
    qs = WalletEntry.objects.order_by()
    if days is not None:
        qs = qs.filter(_ranges_q("created_at", [_day_start(d) for d in days], _DAY))
    return qs


def ledger_day_rows(days: Sequence[date] | None = None) -> list[LedgerDayRollup]:
    """Each wallet's entries per UTC day, summed by kind."""
    rows = ledger_sums(_entries(days), by="wallet_id")
    return [
        LedgerDayRollup(
            day=_as_date(row["day"]),
            wallet_id=row["wallet_id"],
            currency=row["currency"],
            debits=summed_cents(row["debits"]),
            refunds=summed_cents(row["refunds"]),
            top_ups=summed_cents(row["top_ups"]),
            adjustments=summed_cents(row["adjustments"]),
            total=summed_cents(row["total"]),
        )
        for row in rows
    ]


def recon_day_rows(days: Sequence[date] | None = None) -> list[ReconDayRollup]:
    """The reconciliation check per UTC day of the order debit and wallet currency."""
    return [
        ReconDayRollup(
            day=_as_date(row["day"]),
            currency=row["currency"],
            terminal_debits=summed_cents(row["terminal_debits"]),
            terminal_refunds=summed_cents(row["terminal_refunds"]),
            delivered_value=summed_cents(row["delivered_value"]),
            awaiting_refund=int(row["awaiting_refund"] or 0),
            open_orders=int(row["open_orders"] or 0),
        )
        for row in order_checks(_entries(days))
    ]


def wallet_balance_rows() -> list[WalletBalanceRollup]:
    return [
        WalletBalanceRollup(wallet_id=pk, balance=balance)
        for pk, balance in Wallet.objects.order_by("pk").values_list("pk", "balance")
    ]


# --- Which buckets changed -----------------------------------------------------------


@dataclass(frozen=True)
class Touched:
    hours: list[datetime]
    groups: list[tuple[int, Decimal]]
    sold: list[tuple[int, Decimal, date]]
    days: list[date]

    @property
    def buckets(self) -> int:
        return len(self.hours) + len(self.groups) + len(self.sold) + len(self.days)


def touched_since(since: datetime) -> Touched:
    """The buckets whose raw rows changed at or after `since`."""
    changed = Order.objects.order_by().filter(updated_at__gte=since)
    hours = {
        _as_utc(h)
        for h in changed.annotate(h=TruncHour("placed_at", tzinfo=UTC))
        .values_list("h", flat=True)
        .distinct()
    }
    vouchers = Voucher.objects.order_by().filter(updated_at__gte=since)
    groups = set(vouchers.values_list("product_id", "denomination").distinct())
    sold = {
        (p, d, _as_date(day))
        for p, d, day in vouchers.filter(delivered_at__isnull=False)
        .annotate(day=TruncDate("delivered_at", tzinfo=UTC))
        .values_list("product_id", "denomination", "day")
        .distinct()
    }
    day = TruncDate("created_at", tzinfo=UTC)
    days = {
        _as_date(d)
        for d in WalletEntry.objects.order_by()
        .filter(created_at__gte=since)
        .annotate(day=day)
        .values_list("day", flat=True)
        .distinct()
    }
    days |= {
        _as_date(d)
        for d in WalletEntry.objects.order_by()
        .filter(kind=WalletEntryKind.ORDER_DEBIT, order__updated_at__gte=since)
        .annotate(day=day)
        .values_list("day", flat=True)
        .distinct()
    }
    return Touched(
        hours=sorted(h for h in hours if h is not None),
        groups=sorted(groups),
        sold=sorted(sold),
        days=sorted(days),
    )


# --- Refresh ---------------------------------------------------------------------


def _replace(model: type[Model], stale: QuerySet[Any], rows: list[Any]) -> int:
    stale.delete()
    model.objects.bulk_create(rows, batch_size=2000)  # type: ignore[attr-defined]
    return len(rows)


def _insert_select(model: type[Model], query: QuerySet[Any], columns: Sequence[str]) -> int:
    """INSERT INTO the rollup the rows of a grouped query, in the database: what a
    full build does, so no row travels to Python. `columns`: the model fields the
    query's SELECT list fills, in its order."""
    model.objects.all().delete()  # type: ignore[attr-defined]
    sql, params = query.query.sql_with_params()
    quote = connection.ops.quote_name
    fields = {field.name: str(field.column) for field in model._meta.concrete_fields}
    names = ", ".join(quote(fields[name]) for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(model._meta.db_table)} ({names}) {sql}", params)
        return max(cursor.rowcount, 0)


def _rebuild_all(*, now: datetime) -> int:
    base = OrderHourRollup.objects.order_by()
    by_day = base.annotate(d=TruncDate("hour", tzinfo=UTC))
    order_columns = ("status", "product_id", "product_name", "orders")
    builds: list[tuple[type[Model], QuerySet[Any], Sequence[str]]] = [
        (OrderHourRollup, _order_hour_query(), ("hour", *order_columns)),
        (
            OrderStatusHourRollup,
            base.values("hour", "status").annotate(n=Sum("orders")),
            ("hour", "status", "orders"),
        ),
        (
            OrderProductDayRollup,
            by_day.values("d", "status", "product_id", "product_name").annotate(n=Sum("orders")),
            ("day", *order_columns),
        ),
        (
            VoucherSoldDayRollup,
            _voucher_sold_query(),
            ("product_id", "denomination", "day", "units"),
        ),
        (
            LedgerDayRollup,
            ledger_sums(_entries(None), by="wallet_id"),
            (
                "day",
                "currency",
                "wallet_id",
                "debits",
                "refunds",
                "top_ups",
                "adjustments",
                "total",
            ),
        ),
        (
            ReconDayRollup,
            order_checks(_entries(None)),
            (
                "day",
                "currency",
                "terminal_debits",
                "terminal_refunds",
                "delivered_value",
                "awaiting_refund",
                "open_orders",
            ),
        ),
    ]
    written = sum(_insert_select(model, query, columns) for model, query, columns in builds)
    written += _replace(VoucherRollup, VoucherRollup.objects.all(), voucher_rows(now=now))
    if connection.vendor == "postgresql":
        # Planner statistics for the freshly filled tables (range reads use their indexes).
        with connection.cursor() as cursor:
            for model in ROLLUP_MODELS:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return written


def _rebuild(touched: Touched, *, now: datetime) -> int:
    written = 0
    for hours in _chunks(touched.hours):
        base = order_hour_rows(hours)
        written += _replace(OrderHourRollup, OrderHourRollup.objects.filter(hour__in=hours), base)
        stale_status = OrderStatusHourRollup.objects.filter(hour__in=hours)
        written += _replace(OrderStatusHourRollup, stale_status, status_hour_rows(base))
    # A day's products are summed from the hours of that day, once they are rebuilt.
    for days in _chunks(sorted({h.date() for h in touched.hours})):
        first, last = _day_start(days[0]), _day_start(days[-1]) + _DAY
        wanted = set(days)
        day_hours = [
            row
            for row in OrderHourRollup.objects.filter(hour__gte=first, hour__lt=last)
            if row.hour.astimezone(UTC).date() in wanted
        ]
        stale_days = OrderProductDayRollup.objects.filter(day__in=days)
        written += _replace(OrderProductDayRollup, stale_days, product_day_rows(day_hours))
    for groups in _chunks(touched.groups):
        stale_groups = VoucherRollup.objects.filter(_groups_q(groups))
        written += _replace(VoucherRollup, stale_groups, voucher_rows(groups, now=now))
    for keys in _chunks(touched.sold):
        q = Q(pk__in=[])
        for product_id, denomination, day in keys:
            q |= Q(product_id=product_id, denomination=denomination, day=day)
        stale_sold = VoucherSoldDayRollup.objects.filter(q)
        written += _replace(VoucherSoldDayRollup, stale_sold, voucher_sold_rows(keys))
    for days in _chunks(touched.days):
        stale_ledger = LedgerDayRollup.objects.filter(day__in=list(days))
        written += _replace(LedgerDayRollup, stale_ledger, ledger_day_rows(days))
        stale_recon = ReconDayRollup.objects.filter(day__in=list(days))
        written += _replace(ReconDayRollup, stale_recon, recon_day_rows(days))
    return written


def _repeatable_read(outermost: bool) -> None:
    """One snapshot for the whole transaction (PostgreSQL, when it is ours to set)."""
    if outermost and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _begin_snapshot() -> bool:
    """The refresh's advisory lock (PostgreSQL); False when another refresh holds it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def rollups_refresh(*, full: bool = False) -> int:
    """Recompute the buckets changed since the last run (every bucket when `full`
    or on the first run); the number of rollup rows written, 0 when another
    refresh was running."""
    started = timezone.now()
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            _repeatable_read(outermost)
            if not _begin_snapshot():
                return 0
            state = RollupState.objects.select_for_update().filter(name=STATE).first()
            if full or state is None:
                written = _rebuild_all(now=started)
            else:
                written = _rebuild(touched_since(state.watermark - MARGIN), now=started)
            written += _replace(
                WalletBalanceRollup, WalletBalanceRollup.objects.all(), wallet_balance_rows()
            )
            RollupState.objects.update_or_create(
                name=STATE, defaults={"watermark": started, "refreshed_at": started}
            )
    except OperationalError:
        if not outermost:
            raise
        # A concurrent refresh committed first (serialisation failure): it did the work.
        logger.info("rollups refresh skipped: a concurrent refresh committed first")
        return 0
    return written


# --- Check -----------------------------------------------------------------------


def _key_and_values(obj: Model) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fields = [f.attname for f in obj._meta.concrete_fields if not f.primary_key]
    values = {name: getattr(obj, name) for name in fields}
    figures = {
        "orders",
        "units",
        "next_expiry",
        "debits",
        "refunds",
        "top_ups",
        "adjustments",
        "total",
    }
    figures |= {
        "terminal_debits",
        "terminal_refunds",
        "delivered_value",
        "awaiting_refund",
        "open_orders",
        "balance",
    }
    key = tuple(_normal(values[n]) for n in fields if n not in figures)
    return key, tuple(_normal(values[n]) for n in fields if n in figures)


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.01"))
    return value


@dataclass(frozen=True)
class RollupDifference:
    table: str
    key: tuple[Any, ...]
    stored: tuple[Any, ...] | None
    expected: tuple[Any, ...] | None

    def __str__(self) -> str:
        key = ", ".join(str(k) for k in self.key)
        return f"{self.table} [{key}]: stored {self.stored}, recomputed {self.expected}"


@dataclass(frozen=True)
class RollupCheck:
    refreshed_at: datetime | None
    differences: list[RollupDifference]
    pending_buckets: int  # changed since the last refresh began: not compared


def _pending_filters(touched: Touched) -> dict[type[Model], Any]:
    sold = {(p, d, day) for p, d, day in touched.sold}
    hours = set(touched.hours)
    hour_days = {h.date() for h in touched.hours}
    return {
        OrderHourRollup: lambda k: k[0] in hours,
        OrderStatusHourRollup: lambda k: k[0] in hours,
        OrderProductDayRollup: lambda k: k[0] in hour_days,
        VoucherRollup: lambda k: (k[0], k[1]) in set(touched.groups),
        VoucherSoldDayRollup: lambda k: (k[0], k[1], k[2]) in sold,
        LedgerDayRollup: lambda k: k[0] in set(touched.days),
        ReconDayRollup: lambda k: k[0] in set(touched.days),
        WalletBalanceRollup: lambda k: False,
    }


def rollups_differences() -> RollupCheck:
    """Every rollup row recomputed from the raw rows, compared with the stored one.

    Buckets whose raw rows changed since the last refresh began are left out
    (the next refresh recomputes them) and counted in `pending_buckets`; wallet
    balances changed since then are left out the same way."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        _repeatable_read(outermost)
        state = RollupState.objects.filter(name=STATE).first()
        if state is None:
            return RollupCheck(refreshed_at=None, differences=[], pending_buckets=0)
        touched = touched_since(state.watermark)
        pending = _pending_filters(touched)
        changed_wallets = set(
            Wallet.objects.filter(updated_at__gte=state.watermark).values_list("pk", flat=True)
        )
        base = order_hour_rows()
        expected_rows: dict[type[Model], list[Any]] = {
            OrderHourRollup: base,
            OrderStatusHourRollup: status_hour_rows(base),
            OrderProductDayRollup: product_day_rows(base),
            VoucherRollup: voucher_rows(now=state.watermark),
            VoucherSoldDayRollup: voucher_sold_rows(),
            LedgerDayRollup: ledger_day_rows(),
            ReconDayRollup: recon_day_rows(),
            WalletBalanceRollup: wallet_balance_rows(),
        }
        differences: list[RollupDifference] = []
        for model, rows in expected_rows.items():
            skip = pending[model]
            expected = dict(_key_and_values(row) for row in rows)
            stored: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            for obj in model.objects.all():  # type: ignore[attr-defined]
                key, values = _key_and_values(obj)
                if key in stored:
                    stored[key] = tuple(a + b for a, b in zip(stored[key], values, strict=True))
                else:
                    stored[key] = values
            for key in sorted(set(expected) | set(stored), key=str):
                if skip(key) or (model is WalletBalanceRollup and key[0] in changed_wallets):
                    continue
                if expected.get(key) != stored.get(key):
                    differences.append(
                        RollupDifference(
                            model._meta.db_table, key, stored.get(key), expected.get(key)
                        )
                    )
    return RollupCheck(
        refreshed_at=state.refreshed_at,
        differences=differences,
        pending_buckets=touched.buckets,
    )
