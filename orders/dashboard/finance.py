"""Finance pages: the refund queue with maker-checker decisions, wallets and their
ledgers, the queue of large top-ups and adjustments waiting for a second approver,
and streamed CSV exports.

Same shape as `views.py`: read input into a form, call one service or
selector, render the page or, for htmx, the partial it swaps.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from itertools import batched
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import connections
from django.db.models import (
    CharField,
    DateTimeField,
    DecimalField,
    F,
    Field,
    Func,
    QuerySet,
    TextField,
)
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

import orders.selectors.finance
import orders.selectors.orders
import orders.selectors.reconciliation
from orders.dashboard.forms import MoneyField, OrderFilterForm, _start_of
from orders.dashboard.permissions import PERMISSIONS, permission_for
from orders.dashboard.views import HtmxHttpRequest, _actor, _partial
from orders.enums import SubStatus, WalletEntryKind
from orders.errors import DomainError, NotFound, ValidationFailed
from orders.models import Client, RefundReview, WalletCreditRequest
from orders.services.finance import refund_decide_many
from orders.services.wallets import (
    CREDIT_DECISIONS,
    ledger_mismatches,
    wallet_credit_decide,
    wallet_credit_request,
)

PAGE_SIZE = 25

# --- Forms ------------------------------------------------------------------------


class RefundQueueFilterForm(forms.Form):
    """The refund queue's filters; every value lives in the URL."""

    client = forms.ModelChoiceField(
        label="Client", required=False, queryset=Client.objects.order_by("name"), empty_label="Any"
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
        label="Reason (sub-status)", required=False, choices=[("", "Any"), *SubStatus.choices]
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

    def to_filters(self) -> orders.selectors.finance.RefundQueueFilters:
        data = self.cleaned_data
        return orders.selectors.finance.RefundQueueFilters(
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
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "“To” must be on or after “From”.")
        return data

    def to_filters(self) -> orders.selectors.finance.LedgerFilters:
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        return orders.selectors.finance.LedgerFilters(
            kind=data.get("kind") or "",
            created_after=_start_of(start) if start else None,
            created_before=_start_of(end + timedelta(days=1)) if end else None,
        )


class TopUpForm(forms.Form):
    """A top-up: a positive amount and a reason."""

    amount = MoneyField(label="Top-up amount", min_value=Decimal("0.01"))
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


# --- Refund queue -----------------------------------------------------------------


def _queue_context(request: HtmxHttpRequest, query: Any) -> tuple[dict[str, Any], int]:
    form = RefundQueueFilterForm(query)
    queue = None
    if form.is_valid():
        try:
            queue = orders.selectors.finance.refund_queue(
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
        "filter_query": _without(query, "cursor"),
    }
    return context, 200 if queue is not None else 400


def _without(query: Any, *names: str) -> str:
    copy = query.copy()
    for name in names:
        copy.pop(name, None)
    return str(copy.urlencode())


@require_GET
@permission_for("refund_queue")
def refund_queue(request: HtmxHttpRequest) -> HttpResponse:
    context, status = _queue_context(request, request.GET)
    template = _partial(request, "dashboard/finance/refunds.html", "refund-results")
    return render(request, template, context, status=status)


@require_POST
@permission_for("refund_decide")
def refund_decide(request: HtmxHttpRequest) -> HttpResponse:
    """Apply one decision to the ticked orders and say, per order, what happened."""
    form = RefundDecisionForm(request.POST)
    if form.is_valid():
        outcomes = refund_decide_many(
            order_ids=form.cleaned_data["order"],
            actor=_actor(request),
            decision=form.cleaned_data["decision"],
            note=form.cleaned_data["note"],
        )
        for outcome in outcomes:
            level = messages.SUCCESS if outcome.ok else messages.ERROR
            messages.add_message(request, level, outcome.summary)
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    # The filters the user was looking at travel in the form as `return_query`.
    query = request.POST.get("return_query", "")
    if not request.htmx:
        url = reverse("dashboard:refund_queue")
        return redirect(f"{url}?{query}" if query else url)
    context, _status = _queue_context(request, QueryDict(query))
    context["show_messages"] = True
    response = render(request, "dashboard/finance/refunds.html#refund-results", context)
    response["HX-Trigger"] = "refundsChanged"
    return response


# --- Wallets ----------------------------------------------------------------------


@require_GET
@permission_for("wallet_list")
def wallet_list(request: HtmxHttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/finance/wallets.html",
        {"wallets": orders.selectors.finance.wallet_list()},
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


def _wallet_context(
    request: HtmxHttpRequest,
    wallet_id: int,
    *,
    top_up_form: TopUpForm | None = None,
    adjust_form: AdjustmentForm | None = None,
) -> tuple[dict[str, Any], int]:
    try:
        wallet = orders.selectors.finance.wallet_get(wallet_id=wallet_id)
    except NotFound:
        raise Http404("No such wallet.") from None
    form = LedgerFilterForm(request.GET)
    page = None
    if form.is_valid():
        try:
            page = orders.selectors.finance.wallet_entry_list(
                wallet_id=wallet.pk,
                filters=form.to_filters(),
                cursor=form.cleaned_data["cursor"] or None,
                limit=PAGE_SIZE,
            )
        except ValidationFailed as error:
            form.add_error(None, error.message)
    credits = orders.selectors.finance.credit_request_queue(wallet_id=wallet.pk)
    context = {
        "wallet": wallet,
        "form": form,
        "page": page,
        "top_up_form": top_up_form or TopUpForm(),
        "adjust_form": adjust_form or AdjustmentForm(),
        "credits": _credit_rows(request.user, credits.requests),
        "credit_total": credits.total,
        "credit_limit": settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT,
        "filter_query": _without(request.GET, "cursor"),
    }
    return context, 200 if page is not None else 400


@require_GET
@permission_for("wallet_detail")
def wallet_detail(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    context, status = _wallet_context(request, wallet_id)
    template = _partial(request, "dashboard/finance/wallet_detail.html", "ledger-results")
    return render(request, template, context, status=status)


def _wallet_money(request: HtmxHttpRequest, wallet_id: int, *, adjust: bool) -> HttpResponse:
    """A top-up or adjustment: moved at once, or a request waiting for a second
    approver; a bad amount re-renders the form with its error (400)."""
    form: TopUpForm | AdjustmentForm = (
        AdjustmentForm(request.POST) if adjust else TopUpForm(request.POST)
    )
    kind = WalletCreditRequest.Kind.ADJUSTMENT if adjust else WalletCreditRequest.Kind.TOP_UP
    if form.is_valid():
        try:
            outcome = wallet_credit_request(
                wallet_id=wallet_id,
                kind=kind,
                amount=form.cleaned_data["amount"],
                actor=_actor(request),
                reason=form.cleaned_data["reason"],
            )
        except NotFound:
            raise Http404("No such wallet.") from None
        except DomainError as refusal:
            field = getattr(refusal, "field", None)
            form.add_error(field if field in form.fields else None, refusal.message)
        else:
            level = messages.INFO if outcome.waiting_for_second_approver else messages.SUCCESS
            messages.add_message(request, level, outcome.message)
            if not request.htmx:
                return redirect("dashboard:wallet_detail", wallet_id=wallet_id)
            context, _status = _wallet_context(request, wallet_id)
            context["show_messages"] = True
            response = render(request, "dashboard/finance/wallet_detail.html#wallet-body", context)
            response["HX-Trigger"] = "creditsChanged"
            return response
    if isinstance(form, AdjustmentForm):
        context, _status = _wallet_context(request, wallet_id, adjust_form=form)
    else:
        context, _status = _wallet_context(request, wallet_id, top_up_form=form)
    template = _partial(request, "dashboard/finance/wallet_detail.html", "wallet-body")
    return render(request, template, context, status=400)


@require_POST
@permission_for("wallet_top_up")
def wallet_top_up_view(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    return _wallet_money(request, wallet_id, adjust=False)


@require_POST
@permission_for("wallet_adjust")
def wallet_adjust_view(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    return _wallet_money(request, wallet_id, adjust=True)


# --- Credit queue: large top-ups and adjustments waiting for a second approver ----


def _credit_queue_context(request: HtmxHttpRequest) -> dict[str, Any]:
    queue = orders.selectors.finance.credit_request_queue()
    return {
        "credits": _credit_rows(request.user, queue.requests),
        "credit_total": queue.total,
        "credit_limit": settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT,
    }


@require_GET
@permission_for("credit_queue")
def credit_queue(request: HtmxHttpRequest) -> HttpResponse:
    template = _partial(request, "dashboard/finance/credits.html", "credit-results")
    return render(request, template, _credit_queue_context(request))


@require_POST
@permission_for("credit_decide")
def credit_decide(request: HtmxHttpRequest, request_id: int) -> HttpResponse:
    """Approve or reject one pending credit and say what happened; back to the page
    it was decided on (the queue or the wallet)."""
    try:
        credit = orders.selectors.finance.credit_request_get(request_id=request_id)
    except NotFound:
        raise Http404("No such credit request.") from None
    form = CreditDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Credit request {credit.pk}: {error}")
    else:
        decision = form.cleaned_data["decision"]
        (row,) = _credit_rows(request.user, [credit])
        # The maker's own approval is refused by the service, with its message.
        if row.needs_admin and not (row.may_approve if decision == "APPROVE" else row.may_reject):
            messages.error(
                request, f"Credit request {credit.pk}: only an admin decides on an adjustment."
            )
        else:
            try:
                outcome = wallet_credit_decide(
                    request_id=credit.pk,
                    actor=_actor(request),
                    decision=decision,
                    note=form.cleaned_data["note"],
                )
            except DomainError as refusal:
                messages.error(request, f"Credit request {credit.pk}: {refusal.message}")
            else:
                messages.success(request, outcome.message)
    on_wallet = request.POST.get("return_to") == "wallet"
    if not request.htmx:
        if on_wallet:
            return redirect("dashboard:wallet_detail", wallet_id=credit.wallet_id)
        return redirect("dashboard:credit_queue")
    if on_wallet:
        context, _status = _wallet_context(request, credit.wallet_id)
        template = "dashboard/finance/wallet_detail.html#wallet-body"
    else:
        context, template = (
            _credit_queue_context(request),
            "dashboard/finance/credits.html#credit-results",
        )
    context["show_messages"] = True
    response = render(request, template, context)
    response["HX-Trigger"] = "creditsChanged"
    return response


# --- Reconciliation ---------------------------------------------------------------


class ReconciliationForm(forms.Form):
    days = forms.IntegerField(
        label="Last (days)",
        required=False,
        min_value=1,
        max_value=365,
        widget=forms.NumberInput(attrs={"size": 4}),
    )


@require_GET
@permission_for("reconciliation")
def reconciliation(request: HtmxHttpRequest) -> HttpResponse:
    """Ledger sums per UTC day and currency, the delivered-or-refunded check, and
    whether every wallet balance still equals the sum of its entries."""
    form = ReconciliationForm(request.GET)
    rows = None
    days = 30
    if form.is_valid():
        days = form.cleaned_data["days"] or 30
        rows = orders.selectors.reconciliation.reconciliation(days=days)
    context = {
        "form": form,
        "days": days,
        "rows": rows,
        "mismatches": ledger_mismatches(),
        "wallet_count": orders.selectors.finance.wallet_count(),
    }
    template = _partial(request, "dashboard/finance/reconciliation.html", "recon-results")
    return render(request, template, context, status=200 if rows is not None else 400)


# --- CSV exports ------------------------------------------------------------------
#
# An export reads `values_list()` tuples of exactly its columns through a
# server-side cursor, never model instances: building an Order and its joined
# Client per row cost many times what the database spends on the query. The
# cells are written in batches, so the response yields a few hundred kilobytes
# at a time instead of one line per row.
#
# Formula injection (OWASP "CSV Injection"): a text cell starting with = + - @,
# a tab or a carriage return is run by a spreadsheet as a formula, so it gets a
# leading ' and opens as text. A plain number ("-10.00") is left alone, and so
# are money, integer and timestamp columns, so finance's sums still work. On
# PostgreSQL the database does this in the same SELECT; elsewhere Python does.

EXPORT_CHUNK_SIZE = 2000  # rows per server-side cursor fetch and per yielded batch


def _csv_response(filename: str, header: list[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """Stream `rows` as CSV. The csv writer leaves None an empty cell and writes
    anything else not a string (int, Decimal) with str(), so 12.50 is "12.50"."""

    def batches() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield buffer.getvalue()
        for batch in batched(rows, EXPORT_CHUNK_SIZE):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(batch)
            yield buffer.getvalue()

    response = StreamingHttpResponse(batches(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    # permission_for is typed for HttpResponse; Django serves both kinds alike.
    return cast(HttpResponse, response)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def csv_safe(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    if value[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _PgCsvText(Func):
    """csv_safe() in SQL for a plain column: one ascii() test per cell, the regex
    only for the rare cell that starts like a formula."""

    template = (
        "CASE WHEN ascii(%(expressions)s) NOT IN (61, 43, 45, 64, 9, 13) THEN %(expressions)s"
        " WHEN %(expressions)s ~ '^[+-]?[0-9]+([.][0-9]+)?$' THEN %(expressions)s"
        " ELSE '''' || %(expressions)s END"
    )
    output_field = TextField()


class _PgCsvTextOnce(Func):
    """csv_safe() in SQL naming its argument once, for an annotation (a subquery),
    which the CASE above would run up to four times per row."""

    template = (
        r"regexp_replace(%(expressions)s, '^(?=[-=+@\t\r])(?![+-]?[0-9]+([.][0-9]+)?$)', '''')"
    )
    output_field = TextField()


class _PgMoneyText(Func):
    """A numeric as PostgreSQL prints it, the very text psycopg builds the Decimal
    from, so it is what str() of that Decimal gives: "12.50"."""

    template = "(%(expressions)s)::text"
    output_field = TextField()


class _PgIsoText(Func):
    """A timestamptz as datetime.isoformat() prints it in the session's time zone
    (the one Django gives the datetimes it loads): "2025-01-31T09:05:00.250000+00:00",
    and without the fraction when the microseconds are zero."""

    # ".000000" can only be the fraction: no other part of the pattern has a dot.
    template = (
        "replace(to_char(%(expressions)s, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'), '.000000', '')"
    )
    output_field = TextField()


def _column_field(qs: QuerySet[Any], name: str) -> Field[Any, Any]:
    """The model field or annotation behind `name` (which may follow relations)."""
    if name in qs.query.annotations:
        return cast(Field[Any, Any], qs.query.annotations[name].output_field)
    model: Any = qs.model
    *path, last = name.split("__")
    for step in path:
        model = model._meta.get_field(step).related_model
    return cast(Field[Any, Any], model._meta.get_field(last))


def _is_free_text(field: Field[Any, Any]) -> bool:
    # Choice columns (status, kind, decision) only ever hold our own enum values.
    return isinstance(field, (CharField, TextField)) and not field.choices


def _export_rows(qs: QuerySet[Any], fields: list[str]) -> Iterator[Sequence[Any]]:
    """The cells of `fields` for every row of `qs`, streamed by a server-side cursor:
    money as str(Decimal), timestamps as isoformat(), NULL as None (an empty cell),
    free text through csv_safe().

    On PostgreSQL the database renders money, timestamps and safe text as that same
    text, so the rows go from the cursor to the csv writer with no Python step per
    row; elsewhere (SQLite) Python formats the timestamps and the text.
    """
    kinds = {name: _column_field(qs, name) for name in fields}
    timestamps = {name for name, field in kinds.items() if isinstance(field, DateTimeField)}
    texts = {name for name, field in kinds.items() if _is_free_text(field)}
    if connections[qs.db].vendor == "postgresql":
        columns: list[Any] = []
        for name in fields:
            if name in timestamps:
                columns.append(_PgIsoText(F(name)))
            elif isinstance(kinds[name], DecimalField):
                columns.append(_PgMoneyText(F(name)))
            elif name in texts:
                once = name in qs.query.annotations
                columns.append(_PgCsvTextOnce(F(name)) if once else _PgCsvText(F(name)))
            else:
                columns.append(name)
        return qs.values_list(*columns).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    stamp_at = [i for i, name in enumerate(fields) if name in timestamps]
    text_at = [i for i, name in enumerate(fields) if name in texts]
    rows = qs.values_list(*fields).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    return (_python_cells(row, stamp_at, text_at) for row in rows)


def _python_cells(row: tuple[Any, ...], stamp_at: list[int], text_at: list[int]) -> list[Any]:
    cells = list(row)
    for i in stamp_at:
        if cells[i] is not None:
            cells[i] = cells[i].isoformat()
    for i in text_at:
        if cells[i]:
            cells[i] = csv_safe(cells[i])
    return cells


# (CSV header, queryset field) in column order; only these columns are ever read.
ORDER_EXPORT = [
    ("id", "id"),
    ("reference_code", "reference_code"),
    ("client", "client__name"),
    ("product", "product_name"),
    ("status", "status"),
    ("sub_status", "sub_status"),
    ("currency", "currency"),
    ("denomination", "denomination"),
    ("quantity", "quantity"),
    ("amount", "amount"),
    ("wallet_currency", "wallet_currency"),
    ("wallet_amount", "wallet_amount"),
    ("refund_status", "refund_status"),
    ("refund_amount", "refund_amount"),
    ("customer_email", "customer_email"),
    ("placed_at", "placed_at"),
    ("delivered_at", "delivered_at"),
    ("refunded_at", "refunded_at"),
]
ORDER_COLUMNS = [column for column, _field in ORDER_EXPORT]
ORDER_FIELDS = [field for _column, field in ORDER_EXPORT]


@require_GET
@permission_for("export_orders")
def export_orders(request: HtmxHttpRequest) -> HttpResponse:
    """The order list's current filters as CSV; never a voucher column."""
    form = OrderFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse("The filters could not be used.", status=400, content_type="text/plain")
    qs = orders.selectors.orders.order_queryset(filters=form.to_filters())
    order = ("-placed_at", "-id") if form.newest_first else ("placed_at", "id")
    rows = _export_rows(qs.order_by(*order), ORDER_FIELDS)
    return _csv_response("orders.csv", ORDER_COLUMNS, rows)


REFUND_REVIEW_FIELDS = ["latest_decision", "latest_reviewer", "latest_review_at"]


@require_GET
@permission_for("export_refunds")
def export_refunds(request: HtmxHttpRequest) -> HttpResponse:
    """The refund queue under its current filters as CSV."""
    form = RefundQueueFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse("The filters could not be used.", status=400, content_type="text/plain")
    qs = orders.selectors.finance.refund_queue_queryset(filters=form.to_filters())
    fields = [*ORDER_FIELDS, *REFUND_REVIEW_FIELDS]
    return _csv_response(
        "refunds.csv", [*ORDER_COLUMNS, *REFUND_REVIEW_FIELDS], _export_rows(qs, fields)
    )


LEDGER_EXPORT = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("kind", "kind"),
    ("amount", "amount"),
    ("balance_after", "balance_after"),
    ("order_id", "order_id"),
    ("note", "note"),
    ("actor", "actor_label"),
]
LEDGER_COLUMNS = [column for column, _field in LEDGER_EXPORT]
LEDGER_FIELDS = [field for _column, field in LEDGER_EXPORT]


@require_GET
@permission_for("export_ledger")
def export_ledger(request: HtmxHttpRequest, wallet_id: int) -> HttpResponse:
    """One wallet's ledger (newest first) under the page's filters as CSV."""
    try:
        wallet = orders.selectors.finance.wallet_get(wallet_id=wallet_id)
    except NotFound:
        raise Http404("No such wallet.") from None
    form = LedgerFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse("The filters could not be used.", status=400, content_type="text/plain")
    qs = orders.selectors.finance.wallet_entries_queryset(
        wallet_id=wallet.pk, filters=form.to_filters()
    )
    rows = _export_rows(qs, LEDGER_FIELDS)
    return _csv_response(f"wallet-{wallet.pk}-{wallet.currency}-ledger.csv", LEDGER_COLUMNS, rows)
