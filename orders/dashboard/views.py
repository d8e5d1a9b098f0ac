"""Staff dashboard views: read input into a form, call one service or selector, render.

Each view is wrapped in `permission_for(<name>)`, which reads the one table in
`orders/dashboard/permissions.py`. Fragments that htmx swaps are partials of
the page template; a request from htmx gets the partial, any other the page.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

import orders.selectors.audit
import orders.selectors.inventory
import orders.selectors.orders
import orders.selectors.overview
from orders.dashboard.charts import orders_per_hour_chart, product_bar_chart
from orders.dashboard.forms import ActionForm, AuditFilterForm, OrderFilterForm, RevealForm
from orders.dashboard.permissions import permission_for
from orders.enums import DeliveryEmailStatus, OrderStatus
from orders.errors import DomainError, NotFound, ValidationFailed
from orders.services import fulfilment
from orders.services.actors import Actor
from orders.services.notifications import RESENDABLE_STATUSES, delivery_email_queue
from orders.services.reveal import (
    REVEALABLE_ORDER_STATUSES,
    REVEALABLE_VOUCHER_STATUSES,
    RevealedVoucher,
)
from orders.services.reveal import (
    voucher_reveal as reveal_service,
)

PAGE_SIZE = 25
OPEN_STATUSES = frozenset({OrderStatus.PLACED, OrderStatus.PENDING})


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _partial(request: HtmxHttpRequest, template: str, name: str) -> str:
    # A history restore (back button after hx-push-url) needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        return f"{template}#{name}"
    return template


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_user(
        request.user,
        ip_address=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.headers.get("User-Agent", ""),
    )


# --- Overview -------------------------------------------------------------------


@require_GET
@permission_for("overview")
def overview(request: HtmxHttpRequest) -> HttpResponse:
    stats = orders.selectors.overview.dashboard_overview()
    context = {
        "stats": stats,
        "hourly_chart": orders_per_hour_chart(
            stats.orders_per_hour, start=stats.since, end=stats.now
        ),
        "product_chart": product_bar_chart(stats.deliveries_by_product),
    }
    return render(request, _partial(request, "dashboard/overview.html", "overview-body"), context)


# --- Orders ---------------------------------------------------------------------


@require_GET
@permission_for("order_list")
def order_list(request: HtmxHttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    page = None
    if form.is_valid():
        try:
            page = orders.selectors.orders.order_list(
                filters=form.to_filters(),
                cursor=form.cleaned_data["cursor"] or None,
                limit=PAGE_SIZE,
                newest_first=form.newest_first,
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    template = _partial(request, "dashboard/order_list.html", "order-results")
    status = 200 if page is not None else 400
    return render(request, template, {"form": form, "page": page}, status=status)


@require_GET
@permission_for("order_row")
def order_row(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    try:
        order = orders.selectors.orders.order_row_get(order_id=order_id)
    except NotFound:
        raise Http404("No such order.") from None
    return render(request, "dashboard/order_list.html#order-row", {"order": order})


def _detail_context(order_id: int) -> dict[str, Any]:
    try:
        detail = orders.selectors.orders.order_detail(order_id=order_id)
    except NotFound:
        raise Http404("No such order.") from None
    order = detail.order
    return {
        "detail": detail,
        "order": order,
        "revealable_order": order.status in REVEALABLE_ORDER_STATUSES,
        "revealable_voucher_statuses": [str(s) for s in REVEALABLE_VOUCHER_STATUSES],
        # Offered when they may apply; the services have the last word and explain a refusal.
        "can_cancel": order.status in OPEN_STATUSES,
        "can_retry": order.status == OrderStatus.PLACED
        or (order.status == OrderStatus.PENDING and order.sub_status in fulfilment.RETRYABLE),
        "can_resend": order.status in RESENDABLE_STATUSES and bool(order.customer_email),
        # The e-mails section reloads itself while one is still on its way.
        "emails_queued": any(
            email.status == DeliveryEmailStatus.QUEUED for email in detail.delivery_emails
        ),
        "reveal_form": RevealForm(),
        "action_form": ActionForm(),
    }


@require_GET
@permission_for("order_detail")
def order_detail(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    context = _detail_context(order_id)
    return render(request, _partial(request, "dashboard/order_detail.html", "order-body"), context)


# --- Vouchers -------------------------------------------------------------------


def _voucher_context(voucher_id: int) -> dict[str, Any]:
    try:
        voucher = orders.selectors.inventory.dashboard_voucher_get(voucher_id=voucher_id)
    except NotFound:
        raise Http404("No such voucher.") from None
    order = voucher.order_item.order
    return {
        "voucher": voucher,
        "order": order,
        "revealable_order": order.status in REVEALABLE_ORDER_STATUSES,
        "revealable_voucher_statuses": [str(s) for s in REVEALABLE_VOUCHER_STATUSES],
        "reveal_form": RevealForm(),
    }


@require_GET
@permission_for("voucher_masked")
def voucher_masked(request: HtmxHttpRequest, voucher_id: int) -> HttpResponse:
    """The masked voucher (the re-mask timer swaps it back in). Never decrypts."""
    context = _voucher_context(voucher_id)
    if request.htmx:
        return render(request, "dashboard/order_detail.html#voucher", context)
    return redirect("dashboard:order_detail", order_id=context["order"].pk)


def _reveal_budget_spent(user_id: int) -> int | None:
    """Count one reveal for the user in this clock hour; the minutes until the next
    hour when the limit is already reached, else None."""
    window = int(time.time() // 3600)
    key = f"dashboard:reveal-rate:{user_id}:{window}"
    cache.add(key, 0, timeout=3700)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=3700)
        used = 1
    if used > settings.REVEAL_RATE_PER_HOUR:
        return max(1, int(((window + 1) * 3600 - time.time()) // 60) + 1)
    return None


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
    response["Pragma"] = "no-cache"
    return response


@never_cache
@require_POST
@permission_for("voucher_reveal")
def voucher_reveal(request: HtmxHttpRequest, voucher_id: int) -> HttpResponse:
    """Decrypt one delivered voucher for the signed-in user, audited with a reason.

    The secret cannot go through post/redirect/get, so a request without htmx
    gets a full page with the revealed voucher; every answer is no-store.
    """
    context = _voucher_context(voucher_id)
    form = RevealForm(request.POST)
    context["reveal_form"] = form
    revealed: RevealedVoucher | None = None
    status = 200
    if not form.is_valid():
        status = 422
    elif (minutes := _reveal_budget_spent(request.user.pk or 0)) is not None:
        form.add_error(
            None,
            f"You have reached the limit of {settings.REVEAL_RATE_PER_HOUR} reveals per hour. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an admin.",
        )
        status = 429
    else:
        try:
            revealed = reveal_service(
                voucher_id=voucher_id, actor=_actor(request), reason=form.audit_reason
            )
        except DomainError as error:
            form.add_error(None, error.message)
            status = 409
    context.update(
        revealed=revealed,
        remask_seconds=settings.REVEAL_REMASK_SECONDS,
        expiry_warning=_expires_soon(revealed),
    )
    if revealed is not None:
        name = "voucher-revealed"
    else:
        context["reveal_open"] = True
        name = "voucher"
    if request.htmx:
        template = f"dashboard/order_detail.html#{name}"
    else:
        template = "dashboard/voucher_reveal.html"
    response = render(request, template, context, status=status)
    if status == 429:
        response["Retry-After"] = "60"
    if revealed is not None:
        response["HX-Trigger"] = "voucherRevealed"  # the audit trail reloads itself
    return _no_store(response)


def _expires_soon(revealed: RevealedVoucher | None) -> bool:
    if revealed is None or revealed.expires_at is None:
        return False
    return (revealed.expires_at - timezone.now()).days < 30


# --- Order actions --------------------------------------------------------------


def _order_action(
    request: HtmxHttpRequest, order_id: int, *, action: str, label: str
) -> HttpResponse:
    """Run one confirmed, audited action on an order and show the order again."""
    form = ActionForm(request.POST)
    error = ""
    outcome = "done."
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            outcome = _run_action(action, order_id=order_id, actor=_actor(request), reason=reason)
        except NotFound:
            raise Http404("No such order.") from None
        except DomainError as refusal:
            error = refusal.message
    else:
        error = "Give a reason to confirm."
    if not request.htmx:
        if error:
            messages.error(request, f"{label}: {error}")
        else:
            messages.success(request, f"{label}: {outcome}")
        return redirect("dashboard:order_detail", order_id=order_id)
    context = _detail_context(order_id)
    context.update(action_error=error, action_done="" if error else f"{label}: {outcome}")
    if error:
        context.update(failed_action=action, action_form=form)
    response = render(request, "dashboard/order_detail.html#order-body", context)
    if not error:
        response["HX-Trigger"] = "orderChanged"
    return response


def _run_action(action: str, *, order_id: int, actor: Actor, reason: str) -> str:
    """Run the action; what to tell the agent it did."""
    # Each service audits itself (action, actor, reason) and writes the StatusChange.
    if action == "resend":
        email = delivery_email_queue(order_id=order_id, actor=actor, reason=reason)
        return (
            f"queued for {email.recipient}. It is sent in the background; "
            "its state shows under Delivery e-mails."
        )
    if action == "cancel":
        fulfilment.order_cancel(order_id=order_id, actor=actor, reason=reason)
    else:
        fulfilment.order_retry(order_id=order_id, actor=actor, note=reason)
    return "done."


@require_POST
@permission_for("order_cancel")
def order_cancel(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    return _order_action(request, order_id, action="cancel", label="Cancel order")


@require_POST
@permission_for("order_retry")
def order_retry(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    return _order_action(request, order_id, action="retry", label="Retry fulfilment")


@require_POST
@permission_for("order_resend")
def order_resend(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    return _order_action(request, order_id, action="resend", label="Resend delivery e-mail")


# --- Audit log ------------------------------------------------------------------


@require_GET
@permission_for("audit_log")
def audit_log(request: HtmxHttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET, actions=orders.selectors.audit.audit_actions())
    page = None
    if form.is_valid():
        try:
            page = orders.selectors.audit.audit_event_list(
                filters=form.to_filters(), cursor=form.cleaned_data["cursor"] or None
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    template = _partial(request, "dashboard/audit_log.html", "audit-results")
    status = 200 if page is not None else 400
    return render(request, template, {"form": form, "page": page}, status=status)
