"""Template helpers for the dashboard: navigation, badges, relative times."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django import template
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

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


@register.simple_tag
def when(value: datetime | None) -> SafeString:
    if value is None:
        return mark_safe('<span class="muted">—</span>')  # a constant
    now = timezone.now()
    if abs((now - value).total_seconds()) < 60:
        relative = "just now"
    elif value <= now:
        relative = f"{timesince(value, now, depth=1)} ago"
    else:
        relative = f"in {timesince(now, value, depth=1)}"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        dateformat.format(local, "c"),
        dateformat.format(local, "Y-m-d H:i:s T"),
        relative.replace("\xa0", " "),
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
