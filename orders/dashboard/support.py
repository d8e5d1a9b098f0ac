"""Support pages: find an order, read it, reveal a delivered voucher, and cancel,
retry or resend an order.

Views read input into a form, call one service or selector, and render. Each
is wrapped in `permission_for(<name>)`, which reads the one table in
`orders/dashboard/permissions.py`. Fragments that htmx swaps are partials of
the page template; a request from htmx gets the partial, any other the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from orders import rules
from orders.dashboard.forms import ActionForm, OrderFilterForm, RevealForm
from orders.dashboard.http import (
    HtmxHttpRequest,
    flash_outcome,
    no_store,
    not_found_as_404,
    page_or_partial,
)
from orders.dashboard.permissions import permission_for
from orders.dashboard.stepup import step_up
from orders.db_router import reads_from_replica
from orders.enums import DeliveryEmailStatus
from orders.errors import DomainError, RateLimited, ValidationFailed
from orders.selectors import inventory as inventory_selectors
from orders.selectors import orders as order_selectors
from orders.services import fulfilment, reveal
from orders.services.actors import Actor
from orders.services.notifications import RESENDABLE_STATUSES, delivery_email_queue

PAGE_SIZE = 25
# A revealed voucher this close to its expiry carries a warning.
EXPIRY_WARNING_DAYS = 30

# --- Orders ---------------------------------------------------------------------


@require_GET
@permission_for("order_list")
@reads_from_replica()
def order_list(request: HtmxHttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    page = None
    if form.is_valid():
        try:
            page = order_selectors.order_list(
                filters=form.to_filters(),
                cursor=form.cleaned_data["cursor"] or None,
                limit=PAGE_SIZE,
                newest_first=form.newest_first,
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    template = page_or_partial(request, "dashboard/order_list.html", "order-results")
    status = 200 if page is not None else 400
    return render(request, template, {"form": form, "page": page}, status=status)


@require_GET
@permission_for("order_row")
def order_row(request: HtmxHttpRequest, order_id: int) -> HttpResponse:
    with not_found_as_404("No such order."):
        order = order_selectors.order_row_get(order_id=order_id)
    return render(request, "dashboard/order_list.html#order-row", {"order": order})


def _detail_context(order_id: int) -> dict[str, Any]:
    with not_found_as_404("No such order."):
        detail = order_selectors.order_detail(order_id=order_id)
    order = detail.order
    return {
        "detail": detail,
        "order": order,
        "revealable_order": order.status in reveal.REVEALABLE_ORDER_STATUSES,
        "revealable_voucher_statuses": [str(s) for s in reveal.REVEALABLE_VOUCHER_STATUSES],
        # Offered when they may apply; the services have the last word and explain a refusal.
        "can_cancel": rules.is_open(order.status),
        "can_retry": rules.is_retryable(status=order.status, sub_status=order.sub_status),
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
    template = page_or_partial(request, "dashboard/order_detail.html", "order-body")
    return render(request, template, context)


# --- Vouchers -------------------------------------------------------------------


def _voucher_context(voucher_id: int) -> dict[str, Any]:
    with not_found_as_404("No such voucher."):
        voucher = inventory_selectors.dashboard_voucher_get(voucher_id=voucher_id)
    order = voucher.order_item.order
    return {
        "voucher": voucher,
        "order": order,
        "revealable_order": order.status in reveal.REVEALABLE_ORDER_STATUSES,
        "revealable_voucher_statuses": [str(s) for s in reveal.REVEALABLE_VOUCHER_STATUSES],
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


@dataclass(frozen=True)
class RevealAttempt:
    """What a reveal request came to: the plaintext, or the status of the refusal."""

    revealed: reveal.RevealedVoucher | None
    status: int
    retry_after: int | None = None


def _attempt_reveal(request: HtmxHttpRequest, voucher_id: int, form: RevealForm) -> RevealAttempt:
    """Reveal with the form's reason; a refusal goes on the form: no reason (422),
    the hourly limit reached (429), or a voucher that may not be revealed (409)."""
    if not form.is_valid():
        return RevealAttempt(revealed=None, status=422)
    try:
        revealed = reveal.voucher_reveal(
            voucher_id=voucher_id, actor=Actor.for_request(request), reason=form.audit_reason
        )
    except RateLimited as limited:
        form.add_error(None, limited.message)
        return RevealAttempt(revealed=None, status=429, retry_after=limited.retry_after)
    except DomainError as error:
        form.add_error(None, error.message)
        return RevealAttempt(revealed=None, status=409)
    return RevealAttempt(revealed=revealed, status=200)


def _expires_soon(revealed: reveal.RevealedVoucher | None) -> bool:
    if revealed is None or revealed.expires_at is None:
        return False
    return (revealed.expires_at - timezone.now()).days < EXPIRY_WARNING_DAYS


def _reveal_context(form: RevealForm, revealed: reveal.RevealedVoucher | None) -> dict[str, Any]:
    """The voucher revealed (re-masked after a while), or the form open again with its refusal."""
    context: dict[str, Any] = {
        "reveal_form": form,
        "revealed": revealed,
        "remask_seconds": settings.REVEAL_REMASK_SECONDS,
        "expiry_warning": _expires_soon(revealed),
    }
    if revealed is None:
        context["reveal_open"] = True
    return context


@never_cache
@require_POST
@permission_for("voucher_reveal")
@step_up
def voucher_reveal(request: HtmxHttpRequest, voucher_id: int) -> HttpResponse:
    """Decrypt one delivered voucher for the signed-in user, audited with a reason.

    The secret cannot go through post/redirect/get, so a request without htmx
    gets a full page with the revealed voucher; every answer is no-store.
    """
    context = _voucher_context(voucher_id)
    form = RevealForm(request.POST)
    attempt = _attempt_reveal(request, voucher_id, form)
    context.update(_reveal_context(form, attempt.revealed))
    name = "voucher-revealed" if attempt.revealed is not None else "voucher"
    template = (
        f"dashboard/order_detail.html#{name}" if request.htmx else "dashboard/voucher_reveal.html"
    )
    response = render(request, template, context, status=attempt.status)
    if attempt.retry_after is not None:
        response["Retry-After"] = str(attempt.retry_after)
    if attempt.revealed is not None:
        response["HX-Trigger"] = "voucherRevealed"  # the audit trail reloads itself
    return no_store(response)


# --- Order actions --------------------------------------------------------------


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


def _attempt_action(
    request: HtmxHttpRequest, order_id: int, form: ActionForm, *, action: str
) -> tuple[str, str]:
    """Run the confirmed action: (the refusal, "" when none; what was done)."""
    if not form.is_valid():
        return "Give a reason to confirm.", "done."
    reason = form.cleaned_data["reason"]
    try:
        with not_found_as_404("No such order."):
            outcome = _run_action(
                action, order_id=order_id, actor=Actor.for_request(request), reason=reason
            )
    except DomainError as refusal:
        return refusal.message, "done."
    return "", outcome


def _order_action(
    request: HtmxHttpRequest, order_id: int, *, action: str, label: str
) -> HttpResponse:
    """Run one confirmed, audited action on an order and show the order again."""
    form = ActionForm(request.POST)
    error, outcome = _attempt_action(request, order_id, form, action=action)
    if not request.htmx:
        flash_outcome(request, label, error=error, done=outcome)
        return redirect("dashboard:order_detail", order_id=order_id)
    context = _detail_context(order_id)
    context.update(action_error=error, action_done="" if error else f"{label}: {outcome}")
    if error:
        context.update(failed_action=action, action_form=form)
    response = render(request, "dashboard/order_detail.html#order-body", context)
    if not error:
        response["HX-Trigger"] = "orderChanged"
    return response


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
