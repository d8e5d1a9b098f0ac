"""Server-rendered SVG charts: no chart library, no JavaScript.

Every label is escaped; each chart has a <title> and <desc> for screen
readers and a plain table next to it in the page for the exact numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from orders.enums import OrderStatus

# Series order (bottom to top) and the CSS class that colours each one.
STATUS_SERIES: list[tuple[str, str]] = [
    (OrderStatus.DELIVERED, "s-ok"),
    (OrderStatus.PARTIALLY_DELIVERED, "s-warn"),
    (OrderStatus.PENDING, "s-info"),
    (OrderStatus.PLACED, "s-neutral"),
    (OrderStatus.CANCELLED, "s-muted"),
    (OrderStatus.FAILED, "s-bad"),
]


def _hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def orders_per_hour_chart(
    rows: Sequence[Mapping[str, Any]], *, start: datetime, end: datetime
) -> SafeString:
    """Stacked bars: orders placed per hour, split by status."""
    counts: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in rows:
        hour = timezone.localtime(row["hour"]) if timezone.is_aware(row["hour"]) else row["hour"]
        counts[_hour(hour)][str(row["status"])] = row["n"]
    first = _hour(timezone.localtime(start)) + timedelta(hours=1)
    hours = [
        first + timedelta(hours=i) for i in range(int((end - first).total_seconds() // 3600) + 1)
    ]
    totals = [sum(counts[h].values()) for h in hours]
    peak = max([*totals, 1])
    peak += peak % 2  # an even peak keeps the middle grid line on a whole number
    width, height, left, bottom, top = 960, 220, 40, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    bar_w = plot_w / max(len(hours), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-labelledby="chart-hourly-title chart-hourly-desc" preserveAspectRatio="none">',
        '<title id="chart-hourly-title">Orders per hour by status, last 7 days</title>',
        f'<desc id="chart-hourly-desc">{escape(_hourly_summary(counts))}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{round(peak * fraction)}</text>"
        )
    width_text = f"{max(bar_w - 1, 1):.2f}"
    # A bar's tooltip is "<hour>: <n> <status>", escaped in its parts: the hour
    # once per bar, the status names once per chart (a week has ~1,000 bars).
    series = [
        (str(status), css, escape(f" {OrderStatus(status).label.lower()}"))
        for status, css in STATUS_SERIES
    ]
    for index, (hour, total) in enumerate(zip(hours, totals, strict=True)):
        x = left + index * bar_w
        y = top + plot_h
        by_status = counts[hour] if total else {}
        hour_text = escape(f"{hour:%a %d %b %H:00}: ") if total else ""
        for status, css, status_text in series:
            n = by_status.get(status, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(
                f'<rect class="{css}" x="{x:.2f}" y="{y:.2f}" width="{width_text}" '
                f'height="{h:.2f}"><title>{hour_text}{n}{status_text}</title></rect>'
            )
        if hour.hour == 0:
            parts.append(
                f'<text class="axis" x="{x:.1f}" y="{height - 8}">{escape(f"{hour:%a %d}")}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped


def _hourly_summary(counts: dict[datetime, dict[str, int]]) -> str:
    totals: dict[str, int] = defaultdict(int)
    for by_status in counts.values():
        for status, n in by_status.items():
            totals[status] += n
    if not totals:
        return "No orders in the last 7 days."
    parts = [f"{OrderStatus(s).label}: {n}" for s, n in sorted(totals.items())]
    return "Totals over the period. " + ", ".join(parts) + "."


def product_bar_chart(rows: Sequence[tuple[str, int]]) -> SafeString:
    """Horizontal bars: delivered orders per product."""
    bar_h, gap, label_w, width = 22, 6, 220, 640
    height = max(len(rows), 1) * (bar_h + gap) + gap
    peak = max([n for _, n in rows] + [1])
    summary = ", ".join(f"{name}: {n}" for name, n in rows) or "No deliveries in the last 7 days."
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        'aria-labelledby="chart-products-title chart-products-desc">',
        '<title id="chart-products-title">Deliveries by product, last 7 days</title>',
        f'<desc id="chart-products-desc">{escape(summary)}</desc>',
    ]
    for index, (name, n) in enumerate(rows):
        y = gap + index * (bar_h + gap)
        w = (width - label_w - 60) * n / peak
        short = name if len(name) <= 30 else name[:29] + "…"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + bar_h * 0.7:.1f}" '
            f'text-anchor="end">{escape(short)}</text>'
            f'<rect class="s-ok" x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}">'
            f"<title>{escape(f'{name}: {n} delivered')}</title></rect>"
            f'<text class="value" x="{label_w + w + 6:.1f}" y="{y + bar_h * 0.7:.1f}">{n}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated label is escaped
