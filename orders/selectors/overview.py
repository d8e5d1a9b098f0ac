"""The dashboard overview: today's orders, the last days' delivery rate and
median delivery time, the refund backlog, low stock and the charts."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Q,
    Sum,
)
from django.db.models.functions import TruncHour
from django.utils import timezone

from orders.enums import OrderStatus, RefundStatus
from orders.models import Order
from orders.rules import TERMINAL_STATUSES, status_values
from orders.selectors.inventory import low_stock

# Deliveries the median is taken over on databases without percentile_cont.
MEDIAN_SAMPLE = 5000


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
        terminal=Count("id", filter=Q(status__in=status_values(TERMINAL_STATUSES))),
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
        low_stock=_low_stock_table(),
        orders_per_hour=per_hour,
        deliveries_by_product=by_product,
        since=since,
        now=now,
    )
