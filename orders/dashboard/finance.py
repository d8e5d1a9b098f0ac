"""Finance pages: the refund queue with maker-checker decisions, wallets and their
ledgers, the queue of large top-ups and adjustments waiting for a second approver,
reconciliation, and the CSV downloads (streamed by `exports.py`).

Same shape as `support.py`: read input into a form, call one service or
selector, render the page or, for htmx, the partial it swaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from orders.dashboard.exports import LEDGER_EXPORT, ORDER_EXPORT, REFUND_EXPORT, csv_export
from orders.dashboard.forms import MoneyField, OrderFilterForm, dates_in_order, start_of_day
from orders.dashboard.http import (
    HtmxHttpRequest,
    flash_form_errors,
    form_refusal,
    not_found_as_404,
    page_or_partial,
    query_without,
)
from orders.dashboard.permissions import PERMISSIONS, permission_for
from orders.dashboard.stepup import step_up
from orders.dashboard.widgets import QuickSelect
from orders.db_router import reads_from_replica
from orders.enums import SubStatus, WalletEntryKind
from orders.errors import DomainError, ValidationFailed
from orders.models import Client, RefundReview, WalletCreditRequest
from orders.rules import CENT
from orders.selectors import finance as finance_selectors
from orders.selectors import orders as order_selectors
from orders.selectors import reconciliation as reconciliation_selectors
from orders.services.actors import Actor
from orders.services.finance import refund_decide_many
from orders.services.wallets import (
    CREDIT_DECISIONS,
    CreditOutcome,
    ledger_mismatches,
    wallet_credit_decide,
    wallet_credit_request,
)

PAGE_SIZE = 25

# --- Forms ------------------------------------------------------------------------


class RefundQueueFilterForm(forms.Form):
    """The refund queue's filters; every value lives in the URL."""

    client = forms.ModelChoiceField(
        label="Client",
        required=False,
        queryset=Client.objects.order_by("name"),
        empty_label="Any",
        widget=QuickSelect(label_field="name"),
    )
    currency = forms.CharField(
        label="Wallet currency",
        required=False,
        max_length=3,
        widget=forms.TextInput(attrs={"placeholder": "USD", "size": 4}),
    )
    older_than_days = forms.IntegerField(
        label="Placed more than (days) ago", required=False, min_value=0, max_value=3650
    )
    sub_status = forms.ChoiceField(
        label="Reason (sub-status)",
        required=False,
        choices=[("", "Any"), *SubStatus.choices],
        widget=QuickSelect,
    )
    amount_min = MoneyField(label="Refund from", required=False, min_value=Decimal("0"))
    amount_max = MoneyField(label="Refund up to", required=False, min_value=Decimal("0"))
    include_stopped = forms.BooleanField(label="Show held and rejected", required=False)
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "“Refund up to” must not be below “Refund from”.")
        return data

    def to_filters(self) -> finance_selectors.RefundQueueFilters:
        data = self.cleaned_data
        return finance_selectors.RefundQueueFilters(
            client_id=data["client"].pk if data.get("client") else None,
            currency=(data.get("currency") or "").strip().upper(),
            older_than_days=data.get("older_than_days"),
            sub_status=data.get("sub_status") or "",
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            include_stopped=bool(data.get("include_stopped")),
        )


class RefundDecisionForm(forms.Form):
    """A decision on the ticked orders; hold and reject need a note."""

    order = forms.TypedMultipleChoiceField(label="Orders", coerce=int, choices=())
    decision = forms.ChoiceField(label="Decision", choices=RefundReview.Decision.choices)
    note = forms.CharField(label="Note", required=False, max_length=500, strip=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Which ids are refundable is the service's decision; the form only parses.
        ids = self.data.getlist("order") if hasattr(self.data, "getlist") else []
        field = self.fields["order"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(i, i) for i in ids]
        field.error_messages["required"] = "Tick at least one order."

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("decision") in ("HOLD", "REJECT") and not data.get("note"):
            self.add_error("note", "A hold or reject needs a note saying why.")
        return data


class LedgerFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any"), *WalletEntryKind.choices]
    )
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        dates_in_order(self, "created_from", "created_to")
        return data

    def to_filters(self) -> finance_selectors.LedgerFilters:
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        return finance_selectors.LedgerFilters(
            kind=data.get("kind") or "",
            created_after=start_of_day(start) if start else None,
            created_before=start_of_day(end + timedelta(days=1)) if end else None,
        )


class TopUpForm(forms.Form):
    """A top-up: a positive amount and a reason."""

    amount = MoneyField(label="Top-up amount", min_value=CENT)
    reason = forms.CharField(label="Reason", max_length=500, strip=True)


class AdjustmentForm(forms.Form):
    """An admin's signed correction of a balance, with a reason."""

    amount = MoneyField(label="Adjustment (signed)")
    reason = forms.CharField(label="Reason", max_length=500, strip=True)

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("The amount must not be zero.")
        return amount


class CreditDecisionForm(forms.Form):
    """Approve or reject one pending credit request; a reject needs a note."""

    decision = forms.ChoiceField(choices=[(d, d.capitalize()) for d in CREDIT_DECISIONS])
    note = forms.CharField(label="Note", required=False, max_length=500, strip=True)
    return_to = forms.ChoiceField(
        required=False, choices=[("queue", "queue"), ("wallet", "wallet")]
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("decision") == "REJECT" and not data.get("note"):
            self.add_error("note", "A reject needs a note saying why.")
        return data


class ReconciliationForm(forms.Form):
    days = forms.IntegerField(
        label="Last (days)",
        required=False,
        min_value=1,
        max_value=365,
        widget=forms.NumberInput(attrs={"size": 4}),
    )


def _with_messages(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], *, trigger: str
) -> HttpResponse:
    """An htmx answer after a decision: the region again, its messages shown in it,
    and the event that tells the other regions to reload."""
    context["show_messages"] = True
    response = render(request, template, context)
    response["HX-Trigger"] = trigger
    return response


# --- Refund queue -----------------------------------------------------------------


def _queue_context(query: QueryDict) -> tuple[dict[str, Any], int]:
    form = RefundQueueFilterForm(query)
    queue = None
    if form.is_valid():
        try:
            queue = finance_selectors.refund_queue(
                filters=form.to_filters(),
                cursor=form.cleaned_data["cursor"] or None,
                limit=PAGE_SIZE,
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    context = {
        "form": form,
        "queue": queue,
        "decision_form": RefundDecisionForm(),
        "filter_query": query_without(query, "cursor"),
    }
    return context, 200 if queue is not None else 400


@require_GET
@permission_for("refund_queue")
@reads_from_replica()
def refund_queue(request: HtmxHttpRequest) -> HttpResponse:
    context, status = _queue_context(request.GET)
    template = page_or_partial(request, "dashboard/finance/refunds.html", "refund-results")
    return render(request, template, context, status=status)


def _decide_refunds(request: HtmxHttpRequest, form: RefundDecisionForm) -> None:
    """Apply the decision to every ticked order; one message per order."""
    outcomes = refund_decide_many(
        order_ids=form.cleaned_data["order"],
        actor=Actor.for_request(request),
        decision=form.cleaned_data["decision"],
        note=form.cleaned_data["note"],
    )
    for outcome in outcomes:
        level = messages.SUCCESS if outcome.ok else messages.ERROR
        messages.add_message(request, level, outcome.summary)


@require_POST
@permission_for("refund_decide")
@step_up
def refund_decide(request: HtmxHttpRequest) -> HttpResponse:
    """Apply one decision to the ticked orders and say, per order, what happened."""
    form = RefundDecisionForm(request.POST)
    if form.is_valid():
        _decide_refunds(request, form)
    else:
        flash_form_errors(request, form)
    # The filters the user was looking at travel in the form as `return_query`.
    query = request.POST.get("return_query", "")
    if not request.htmx:
        url = reverse("dashboard:refund_queue")
        return redirect(f"{url}?{query}" if query else url)
    context, _status = _queue_context(QueryDict(query))
    template = "dashboard/finance/refunds.html#refund-results"
    return _with_messages(request, template, context, trigger="refundsChanged")


# --- Wallets ----------------------------------------------------------------------


@require_GET
@permission_for("wallet_list")
@reads_from_replica()
def wallet_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request, "dashboard/finance/wallets.html", {"wallets": finance_selectors.wallet_list()}
    )


@dataclass(frozen=True)
class CreditRow:
    """A pending credit request and what the viewing user may do with it."""

    credit: WalletCreditRequest
    own: bool
    needs_admin: bool

    @property
    def may_approve(self) -> bool:
        return not self.own and not self.needs_admin

    @property
    def may_reject(self) -> bool:
        return self.own or not self.needs_admin


def _credit_rows(user: Any, requests: list[WalletCreditRequest]) -> list[CreditRow]:
    """Approving needs a different user and, for an adjustment, the permission to
    make one (an admin's); the maker may withdraw (reject) their own."""
    may_adjust = user.has_perm(PERMISSIONS["wallet_adjust"])
    return [
        CreditRow(
            credit=credit,
            own=credit.requested_by_id == user.pk,
            needs_admin=credit.kind == WalletCreditRequest.Kind.ADJUSTMENT and not may_adjust,
        )
        for credit in requests
    ]


def _ledger_page(wallet_id: int, form: LedgerFilterForm) -> finance_selectors.LedgerPage | None:
    """One page of the wallet's ledger under the form's filters; None when they are unusable."""
    if not form.is_valid():
        return None
    try:
        return finance_selectors.wallet_entry_list(
            wallet_id=wallet_id,
            filters=form.to_filters(),
            cursor=form.cleaned_data["cursor"] or None,
            limit=PAGE_SIZE,
        )
    except ValidationFailed as error:
        form.add_error(None, error.message)
        return None


def _wallet_context(
    request: HtmxHttpRequest,
    wallet_id: int,
    *,
    money_form: TopUpForm | AdjustmentForm | None = None,
) -> tuple[dict[str, Any], int]:
    """The wallet page; `money_form`, a rejected top-up or adjustment, is shown again."""
    with not_found_as_404("No such wallet."):
        wallet = finance_selectors.wallet_get(wallet_id=wallet_id)
    form = LedgerFilterForm(request.GET)
    page = _ledger_page(wallet.pk, form)
    credits = finance_selectors.credit_request_queue(wallet_id=wallet.pk)
    context = {
        "wallet": wallet,
        "form": form,
        "page": page,
        "top_up_form": money_form if isinstance(money_form, TopUpForm) else TopUpForm(),
        "adjust_form": money_form if isinstance(money_form, AdjustmentForm) else AdjustmentForm(),
        "credits": _credit_rows(request.user, credits.requests),
        "credit_total": credits.total,
        "credit_limit": settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT,
        "filter_query": query_without(request.GET, "cursor"),
    }
    return context, 200 if page is not None else 400


@require_GET
@permission_for("wallet_detail")
def wallet_detail(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    context, status = _wallet_context(request, wallet_id)
    template = page_or_partial(request, "dashboard/finance/wallet_detail.html", "ledger-results")
    return render(request, template, context, status=status)


def _request_credit(
    request: HtmxHttpRequest, wallet_id: int, form: TopUpForm | AdjustmentForm
) -> CreditOutcome | None:
    """Ask the wallet service for the top-up or adjustment; None, with the refusal
    on the form, when it is refused."""
    adjust = isinstance(form, AdjustmentForm)
    kind = WalletCreditRequest.Kind.ADJUSTMENT if adjust else WalletCreditRequest.Kind.TOP_UP
    try:
        with not_found_as_404("No such wallet."):
            return wallet_credit_request(
                wallet_id=wallet_id,
                kind=kind,
                amount=form.cleaned_data["amount"],
                actor=Actor.for_request(request),
                reason=form.cleaned_data["reason"],
            )
    except DomainError as refusal:
        form_refusal(form, refusal)
        return None


def _wallet_money(request: HtmxHttpRequest, wallet_id: int, *, adjust: bool) -> HttpResponse:
    """A top-up or adjustment: moved at once, or a request waiting for a second
    approver; a bad amount re-renders the form with its error (400)."""
    form = AdjustmentForm(request.POST) if adjust else TopUpForm(request.POST)
    outcome = _request_credit(request, wallet_id, form) if form.is_valid() else None
    if outcome is None:
        context, _status = _wallet_context(request, wallet_id, money_form=form)
        template = page_or_partial(request, "dashboard/finance/wallet_detail.html", "wallet-body")
        return render(request, template, context, status=400)
    level = messages.INFO if outcome.waiting_for_second_approver else messages.SUCCESS
    messages.add_message(request, level, outcome.message)
    if not request.htmx:
        return redirect("dashboard:wallet_detail", wallet_id=wallet_id)
    context, _status = _wallet_context(request, wallet_id)
    template = "dashboard/finance/wallet_detail.html#wallet-body"
    return _with_messages(request, template, context, trigger="creditsChanged")


@require_POST
@permission_for("wallet_top_up")
@step_up
def wallet_top_up_view(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    return _wallet_money(request, wallet_id, adjust=False)


@require_POST
@permission_for("wallet_adjust")
@step_up
def wallet_adjust_view(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    return _wallet_money(request, wallet_id, adjust=True)


# --- Credit queue: large top-ups and adjustments waiting for a second approver ----


def _credit_queue_context(request: HtmxHttpRequest) -> dict[str, Any]:
    queue = finance_selectors.credit_request_queue()
    return {
        "credits": _credit_rows(request.user, queue.requests),
        "credit_total": queue.total,
        "credit_limit": settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT,
    }


@require_GET
@permission_for("credit_queue")
@reads_from_replica()
def credit_queue(request: HtmxHttpRequest) -> HttpResponse:
    template = page_or_partial(request, "dashboard/finance/credits.html", "credit-results")
    return render(request, template, _credit_queue_context(request))


def _decide_credit(
    request: HtmxHttpRequest, credit: WalletCreditRequest, form: CreditDecisionForm
) -> None:
    """Decide on one pending credit and say what happened."""
    decision = form.cleaned_data["decision"]
    (row,) = _credit_rows(request.user, [credit])
    # The maker's own approval is refused by the service, with its message.
    if row.needs_admin and not (row.may_approve if decision == "APPROVE" else row.may_reject):
        messages.error(
            request, f"Credit request {credit.pk}: only an admin decides on an adjustment."
        )
        return
    try:
        outcome = wallet_credit_decide(
            request_id=credit.pk,
            actor=Actor.for_request(request),
            decision=decision,
            note=form.cleaned_data["note"],
        )
    except DomainError as refusal:
        messages.error(request, f"Credit request {credit.pk}: {refusal.message}")
    else:
        messages.success(request, outcome.message)


@require_POST
@permission_for("credit_decide")
@step_up
def credit_decide(request: HtmxHttpRequest, request_id: int) -> HttpResponse:
    """Approve or reject one pending credit and say what happened; back to the page
    it was decided on (the queue or the wallet)."""
    with not_found_as_404("No such credit request."):
        credit = finance_selectors.credit_request_get(request_id=request_id)
    form = CreditDecisionForm(request.POST)
    if form.is_valid():
        _decide_credit(request, credit, form)
    else:
        flash_form_errors(request, form, prefix=f"Credit request {credit.pk}: ")
    on_wallet = request.POST.get("return_to") == "wallet"
    if not request.htmx:
        if on_wallet:
            return redirect("dashboard:wallet_detail", wallet_id=credit.wallet_id)
        return redirect("dashboard:credit_queue")
    if on_wallet:
        context, _status = _wallet_context(request, credit.wallet_id)
        template = "dashboard/finance/wallet_detail.html#wallet-body"
    else:
        context = _credit_queue_context(request)
        template = "dashboard/finance/credits.html#credit-results"
    return _with_messages(request, template, context, trigger="creditsChanged")


# --- Reconciliation ---------------------------------------------------------------


@require_GET
@permission_for("reconciliation")
def reconciliation(request: HtmxHttpRequest) -> HttpResponse:
    """Ledger sums per UTC day and currency, the delivered-or-refunded check, and
    whether every wallet balance still equals the sum of its entries."""
    form = ReconciliationForm(request.GET)
    report = None
    days = 30
    if form.is_valid():
        days = form.cleaned_data["days"] or 30
        report = reconciliation_selectors.reconciliation_report(days=days)
    # From the rollups' last refresh; from the ledger itself until they exist.
    mismatches = reconciliation_selectors.ledger_mismatches_as_of()
    context = {
        "form": form,
        "days": days,
        "rows": report.rows if report is not None else None,
        "as_of": report.as_of if report is not None else None,
        "mismatches": ledger_mismatches() if mismatches is None else mismatches,
        "wallet_count": finance_selectors.wallet_count(),
    }
    template = page_or_partial(request, "dashboard/finance/reconciliation.html", "recon-results")
    return render(request, template, context, status=200 if report is not None else 400)


# --- CSV exports ------------------------------------------------------------------


def _unusable_filters() -> HttpResponse:
    return HttpResponse("The filters could not be used.", status=400, content_type="text/plain")


@require_GET
@permission_for("export_orders")
@reads_from_replica()
def export_orders(request: HtmxHttpRequest) -> HttpResponse:
    """The order list's current filters as CSV; never a voucher column."""
    form = OrderFilterForm(request.GET)
    if not form.is_valid():
        return _unusable_filters()
    qs = order_selectors.order_queryset(filters=form.to_filters())
    order = ("-placed_at", "-id") if form.newest_first else ("placed_at", "id")
    return csv_export("orders.csv", ORDER_EXPORT, qs.order_by(*order))


@require_GET
@permission_for("export_refunds")
@reads_from_replica()
def export_refunds(request: HtmxHttpRequest) -> HttpResponse:
    """The refund queue under its current filters as CSV."""
    form = RefundQueueFilterForm(request.GET)
    if not form.is_valid():
        return _unusable_filters()
    qs = finance_selectors.refund_queue_queryset(filters=form.to_filters())
    return csv_export("refunds.csv", REFUND_EXPORT, qs)


@require_GET
@permission_for("export_ledger")
@reads_from_replica()
def export_ledger(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    """One wallet's ledger (newest first) under the page's filters as CSV."""
    with not_found_as_404("No such wallet."):
        wallet = finance_selectors.wallet_get(wallet_id=wallet_id)
    form = LedgerFilterForm(request.GET)
    if not form.is_valid():
        return _unusable_filters()
    qs = finance_selectors.wallet_entries_queryset(wallet_id=wallet.pk, filters=form.to_filters())
    return csv_export(f"wallet-{wallet.pk}-{wallet.currency}-ledger.csv", LEDGER_EXPORT, qs)
