"""The pages no single workspace owns: the overview every staff role lands on,
and the audit log (admins).

Same shape as `support.py`: read input into a form, call one selector, render
the page or, for htmx, the partial it swaps.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from orders.dashboard.charts import orders_per_hour_chart, product_bar_chart
from orders.dashboard.forms import AuditFilterForm
from orders.dashboard.http import HtmxHttpRequest, page_or_partial
from orders.dashboard.permissions import permission_for
from orders.dashboard.templatetags.dashboard import money, status_badge
from orders.db_router import reads_from_replica
from orders.errors import ValidationFailed
from orders.selectors import audit as audit_selectors
from orders.selectors import overview as overview_selectors

# A row of the low-stock table, built here rather than in the template: the
# table lists every low product and denomination (hundreds on a big catalogue),
# and one str.format per row, each text value escaped once, costs a small part
# of a template loop's lookups and filters.
_LOW_STOCK_ROW = (
    '<tr><td>{name}</td><td class="num">{denomination}</td><td class="num">{available}</td>'
    '<td class="num">{threshold}</td></tr>'
)
_OUT_OF_STOCK = status_badge("FAILED", "0 — out of stock")


def _low_stock_html(rows: list[dict[str, Any]]) -> SafeString:
    return mark_safe(  # noqa: S308 - every text value is escaped
        "\n          ".join(
            _LOW_STOCK_ROW.format(
                name=escape(row["name"]),
                denomination=escape(money(row["denomination"], row["currency"])),
                available=_OUT_OF_STOCK if row["available"] == 0 else row["available"],
                threshold=row["threshold"],
            )
            for row in rows
        )
    )


@require_GET
@permission_for("overview")
@reads_from_replica()
def overview(request: HtmxHttpRequest) -> HttpResponse:
    stats = overview_selectors.dashboard_overview()
    context = {
        "stats": stats,
        "low_stock_html": _low_stock_html(stats.low_stock),
        "hourly_chart": orders_per_hour_chart(
            stats.orders_per_hour, start=stats.since, end=stats.now
        ),
        "product_chart": product_bar_chart(stats.deliveries_by_product),
        "median_sample": f"{overview_selectors.MEDIAN_SAMPLE:,}",
    }
    template = page_or_partial(request, "dashboard/overview.html", "overview-body")
    return render(request, template, context)


@require_GET
@permission_for("audit_log")
@reads_from_replica()
def audit_log(request: HtmxHttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET, actions=audit_selectors.audit_actions())
    page = None
    if form.is_valid():
        try:
            page = audit_selectors.audit_event_list(
                filters=form.to_filters(), cursor=form.cleaned_data["cursor"] or None
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    template = page_or_partial(request, "dashboard/audit_log.html", "audit-results")
    status = 200 if page is not None else 400
    return render(request, template, {"form": form, "page": page}, status=status)
