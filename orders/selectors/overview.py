"""The dashboard overview: today's orders, the last days' delivery rate and
median delivery time, the refund backlog, low stock and the charts."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
)
from django.db.models.functions import TruncHour
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import (
    Order,
    OrderHourRollup,
    OrderProductDayRollup,
    OrderStatusHourRollup,
    RollupState,
)
from orders.rules import TERMINAL_STATUSES, status_values
from orders.selectors.finance import refunds_owed
from orders.selectors.inventory import low_stock
from orders.selectors.rollups import rollup_state

# Deliveries the median is taken over: the latest ones of the period.
MEDIAN_SAMPLE = 1000


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
    as_of: datetime | None = None  # when the rollups were refreshed; None: all live


def _median_delivery_seconds(*, since: datetime) -> float | None:
    """The median time from placed to delivered of the latest MEDIAN_SAMPLE orders
    delivered since `since`: one index range scan, whatever the number of orders,
    and the same figure on every database."""
    # The database subtracts: one interval a row to load instead of two timestamps.
    took = ExpressionWrapper(F("delivered_at") - F("placed_at"), output_field=DurationField())
    durations = [
        delta.total_seconds()
        for delta in Order.objects.filter(
            status=OrderStatus.DELIVERED, placed_at__gte=since, delivered_at__isnull=False
        )
        .order_by("-placed_at", "-id")
        .annotate(took=took)
        .values_list("took", flat=True)[:MEDIAN_SAMPLE]
    ]
    return statistics.median(durations) if durations else None


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil_day(moment: datetime) -> datetime:
    floor = _floor_day(moment)
    return floor if floor == moment else floor + timedelta(days=1)


_DELIVERED = (OrderStatus.DELIVERED.value, OrderStatus.PARTIALLY_DELIVERED.value)


def _orders_by_hour(
    *, since: datetime, state: RollupState | None
) -> tuple[dict[tuple[datetime, str], int], dict[str, int]]:
    """Orders placed since `since` per (UTC hour, status), and deliveries per product
    name. Whole hours before the last rollup refresh come from the rollup; the
    partial first hour and everything from the hour of the last refresh on are
    counted live (both about an hour of orders). Rollup reads are bounded by the
    hours of the period times the statuses (and days times products), whatever
    the number of orders."""
    per_hour: dict[tuple[datetime, str], int] = defaultdict(int)
    by_product: dict[str, int] = defaultdict(int)
    first_full = _ceil_hour(since)
    tail = _floor_hour(state.watermark) if state is not None else since
    live = Order.objects.filter(placed_at__gte=since)
    if tail > first_full:
        for rolled in OrderStatusHourRollup.objects.filter(
            hour__gte=first_full, hour__lt=tail
        ).values("hour", "status", "orders"):
            per_hour[(rolled["hour"].astimezone(UTC), rolled["status"])] += rolled["orders"]
        # Deliveries by product: whole UTC days from the daily rollup, the hours
        # before the first and after the last whole day from the hourly one.
        first_day, last_day = _ceil_day(first_full), _floor_day(tail)
        hours = OrderHourRollup.objects.filter(status__in=_DELIVERED)
        if last_day > first_day:
            days = OrderProductDayRollup.objects.filter(
                status__in=_DELIVERED, day__gte=first_day.date(), day__lt=last_day.date()
            )
            hours = hours.filter(
                Q(hour__gte=first_full, hour__lt=first_day) | Q(hour__gte=last_day, hour__lt=tail)
            )
            for part in days.values("product_name").annotate(n=Sum("orders")).order_by():
                by_product[part["product_name"]] += part["n"]
        else:
            hours = hours.filter(hour__gte=first_full, hour__lt=tail)
        for part in hours.values("product_name").annotate(n=Sum("orders")).order_by():
            by_product[part["product_name"]] += part["n"]
        live = live.filter(Q(placed_at__lt=first_full) | Q(placed_at__gte=tail))
    for row in (
        live.annotate(hour=TruncHour("placed_at", tzinfo=UTC))
        .values("hour", "status", "product_name")
        .annotate(n=Count("id"))
        .order_by()
    ):
        per_hour[(row["hour"].astimezone(UTC), row["status"])] += row["n"]
        if row["status"] in _DELIVERED:
            by_product[row["product_name"]] += row["n"]
    return per_hour, by_product


def _low_stock_table() -> list[dict[str, Any]]:
    """The inventory page's low-stock rows, as the overview's table shows them."""
    return [
        {
            "product_id": row.product_id,
            "name": row.product_name,
            "currency": row.currency,
            "denomination": row.denomination,
            "available": row.available,
            "threshold": row.low_stock_threshold,
        }
        for row in low_stock()
    ]


def dashboard_overview(*, now: datetime | None = None, days: int = 7) -> Overview:
    """Today's orders, the last `days` days' delivery rate, median delivery time and
    charts, the refund backlog and low stock. Orders are counted from the hourly
    rollup plus a live tail (see `_orders_by_hour`); "today" starts at the local
    midnight, counted in whole UTC hours (exact where the time zone's offset is
    a whole number of hours)."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    today_hour = _floor_hour(today)
    state = rollup_state()
    per_hour, products = _orders_by_hour(since=since, state=state)
    terminal = set(status_values(TERMINAL_STATUSES))
    today_counts: dict[str, int] = defaultdict(int)
    delivered = finished = 0
    for (hour, status), n in per_hour.items():
        if hour >= today_hour:
            today_counts[status] += n
        if status == OrderStatus.DELIVERED:
            delivered += n
        if status in terminal:
            finished += n
    # Refunds are paid into the wallet, so they are summed in its currency.
    backlog = [
        {"currency": row["wallet_currency"], "count": row["count"], "value": row["value"]}
        for row in refunds_owed()
        .values("wallet_currency")
        .annotate(count=Count("id"), value=Sum("refund_amount"))
        .order_by("wallet_currency")
    ]
    by_product = sorted(products.items(), key=lambda item: (-item[1], item[0]))[:12]
    return Overview(
        today_by_status=[(str(s), today_counts.get(str(s), 0)) for s in OrderStatus],
        success_rate=(delivered / finished) if finished else None,
        delivered_7d=delivered,
        terminal_7d=finished,
        median_delivery_seconds=_median_delivery_seconds(since=since),
        refund_backlog=backlog,
        low_stock=_low_stock_table(),
        orders_per_hour=[
            {"hour": hour, "status": status, "n": n}
            for (hour, status), n in sorted(per_hour.items())
        ],
        deliveries_by_product=by_product,
        since=since,
        now=now,
        as_of=state.refreshed_at if state is not None else None,
    )
