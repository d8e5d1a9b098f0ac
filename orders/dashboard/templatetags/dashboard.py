"""Template helpers for the dashboard: navigation, badges, relative times."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from orders.dashboard.permissions import may_use, navigation_for

register = template.Library()

# Status -> (icon, tone). The icon and the text carry the meaning; colour only helps.
_BADGES: dict[str, tuple[str, str]] = {
    "PLACED": ("○", "neutral"),
    "PENDING": ("◔", "info"),
    "DELIVERED": ("✓", "ok"),
    "PARTIALLY_DELIVERED": ("◐", "warn"),
    "CANCELLED": ("⊘", "muted"),
    "FAILED": ("✕", "bad"),
    "AVAILABLE": ("○", "neutral"),
    "ALLOCATED": ("◔", "info"),
    "COMPLETED": ("✓", "ok"),
    "BLOCKED": ("⊘", "bad"),
    "REVOKED": ("✕", "bad"),
    "RECHARGED": ("✓", "ok"),
    "NOT_REFUNDED": ("!", "warn"),
    "REFUNDED": ("↺", "ok"),
    "NONE": ("–", "muted"),
    "QUEUED": ("◔", "info"),
    "SENT": ("✓", "ok"),
}


@register.simple_tag(takes_context=True)
def dashboard_nav(context: template.Context) -> list[dict[str, Any]]:
    request = context["request"]
    return navigation_for(request.user, path=request.path)


@register.simple_tag(takes_context=True)
def can_use(context: template.Context, view: str) -> bool:
    return may_use(context["request"].user, view)


# Badges and times appear on every row of every list: they are built in Python
# (format_html escapes each value) rather than included templates, which cost
# a template render per cell.


@register.simple_tag
def status_badge(value: str, label: str = "") -> SafeString:
    icon, tone = _BADGES.get(str(value), ("•", "neutral"))
    text = label or str(value).replace("_", " ").capitalize()
    return format_html(
        '<span class="badge badge-{}" data-status="{}">'
        '<span class="badge-icon" aria-hidden="true">{}</span>{}</span>',
        tone,
        value,
        icon,
        text,
    )


# (unit, seconds), largest first: what "3 hours ago" is counted in.
_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
)


def _relative(seconds: float) -> str:
    """The largest whole unit in `seconds`: "1 day", "3 hours" (as timesince with
    depth=1, at a fraction of its cost: a list page shows 25 of these)."""
    for unit, size in _UNITS:
        count = int(seconds // size)
        if count:
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "0 minutes"


@register.simple_tag
def when(value: datetime | None) -> SafeString:
    if value is None:
        return mark_safe('<span class="muted">—</span>')  # a constant
    delta = (timezone.now() - value).total_seconds()
    if abs(delta) < 60:
        relative = "just now"
    elif delta > 0:
        relative = f"{_relative(delta)} ago"
    else:
        relative = f"in {_relative(-delta)}"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    title = local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")
    # What format_html would build, without its per-argument dispatch: tables
    # show hundreds of these.
    return SafeString(
        f'<time datetime="{escape(local.isoformat())}" title="{escape(title)}">'
        f"{escape(relative)}</time>"
    )


@register.filter
def money(value: Decimal | None, currency: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:,.2f} {currency}".strip()


@register.filter
def web_url(value: str | None) -> str:
    """The value when it is an http(s) URL, else "" (never a javascript: link)."""
    if value and urlsplit(value).scheme.lower() in ("http", "https"):
        return value
    return ""


@register.filter
def is_past(value: datetime | None) -> bool:
    return value is not None and value <= timezone.now()


@register.filter
def duration_text(seconds: float | None) -> str:
    """12 s, 4 min 5 s, 2 h 10 min."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
