"""Inventory pages of the dashboard: stock, CSV import, vouchers and import batches.

The views follow `orders/dashboard/support.py`: read input into a form, call one
service or selector, render the page or, for htmx, the partial it swaps. No
page ever loads or shows a voucher secret: a card is "•••• 1234" from
`card_last4`, and the queries here load no encrypted column.

An uploaded file is validated as it streams, then kept (only when it is valid)
by `services/import_uploads.py`, encrypted in the database, until the import
commits: `voucher_import_commit` reads the same lines again and checks their
hash. The preview (row numbers and reasons, never a cell's value) is kept with
it. Any web host can serve the preview and the commit.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import IO, Any, cast

from django import forms
from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orders import rules
from orders.dashboard.http import (
    HtmxHttpRequest,
    flash_outcome,
    not_found_as_404,
    page_or_partial,
)
from orders.dashboard.permissions import permission_for
from orders.dashboard.templatetags.dashboard import money, when
from orders.dashboard.widgets import QuickSelect
from orders.db_router import reads_from_replica
from orders.enums import InventoryStatus
from orders.errors import DomainError
from orders.models import ImportBatch, Product, Voucher
from orders.selectors import inventory as inventory_selectors
from orders.services import import_uploads
from orders.services import imports as import_service
from orders.services import inventory as inventory_service
from orders.services.actors import Actor

PAGE_SIZE = 50
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
TOO_LARGE = "The file is larger than 20 MB; split it and import each part."
# Columns a voucher row shows; the encrypted ones are never loaded.
_VOUCHER_COLUMNS = (
    "id",
    "product__name",
    "product__currency",
    "denomination",
    "card_last4",
    "status",
    "status_reason",
    "expires_at",
    "batch_id",
    "created_at",
)
VOUCHER_ACTIONS = {
    "block": ("Block", inventory_service.voucher_block),
    "unblock": ("Unblock", inventory_service.voucher_unblock),
    "revoke": ("Revoke", inventory_service.voucher_revoke),
}
BATCH_ACTIONS = {
    "quarantine": ("Quarantine batch", inventory_service.batch_quarantine),
    "revoke": ("Revoke batch", inventory_service.batch_revoke),
}


# --- Forms ----------------------------------------------------------------------


class ImportForm(forms.Form):
    product = forms.ModelChoiceField(
        label="Product",
        queryset=Product.objects.filter(is_active=True).order_by("name"),
        empty_label="Choose a product",
    )
    file = forms.FileField(
        label="CSV file",
        help_text=(
            "UTF-8 CSV with a header row: card_number, pin_code, voucher_reference_number, "
            "claim_url, expires_at, denomination. At most 20 MB."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if (upload.size or 0) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(TOO_LARGE)
        if not (upload.name or "").lower().endswith(".csv"):
            raise forms.ValidationError("Upload a .csv file.")
        return upload


class VoucherFilterForm(forms.Form):
    product = forms.ModelChoiceField(
        label="Product",
        required=False,
        queryset=Product.objects.order_by("name"),
        empty_label="Any",
        widget=QuickSelect(label_field="name"),
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any"), *InventoryStatus.choices],
        widget=QuickSelect,
    )
    batch = forms.IntegerField(label="Batch id", required=False, min_value=1)
    expiring_within = forms.IntegerField(
        label="Expiring within (days)",
        required=False,
        min_value=0,
        max_value=3650,
        help_text="Available vouchers that expire within this many days, or already have.",
    )
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)


class ReasonForm(forms.Form):
    """The confirmation of an inventory action: a reason is required."""

    reason = forms.CharField(label="Reason", max_length=400, strip=True)


# --- Import files ---------------------------------------------------------------


def _keep_import_files(upload: UploadedFile, preview: import_service.ImportPreview) -> None:
    """Keep the validated file (only when it is valid) and its preview for the commit."""
    if not preview.is_valid:
        import_uploads.import_upload_keep(
            batch_id=preview.batch_id, lines=None, preview=_preview_data(preview)
        )
        return
    upload.seek(0)
    # Read as validation read it: newline="" as the csv module wants, no BOM.
    text = io.TextIOWrapper(cast(IO[bytes], upload.file), encoding="utf-8-sig", newline="")
    try:
        import_uploads.import_upload_keep(
            batch_id=preview.batch_id, lines=text, preview=_preview_data(preview)
        )
    finally:
        text.detach()


def _read_preview(batch_id: int) -> dict[str, Any] | None:
    """The preview kept with the file, or None once it is gone."""
    preview = import_uploads.import_upload_preview(batch_id=batch_id)
    if preview is None:
        return None
    preview["denominations"] = [
        (Decimal(value), count) for value, count in preview["denominations"]
    ]
    return preview


def _preview_data(preview: import_service.ImportPreview) -> dict[str, Any]:
    return {
        "row_count": preview.row_count,
        "valid_count": preview.valid_count,
        "error_count": preview.error_count,
        "errors": [error.as_dict() for error in preview.errors],
        "denominations": [[str(value), count] for value, count in preview.denominations.items()],
        "file_error": preview.file_error,
    }


# --- Stock ----------------------------------------------------------------------


_STOCK_LOW = mark_safe(
    '<span class="badge badge-warn"><span class="badge-icon" aria-hidden="true">!</span>'
    "Low stock</span>"
)
_STOCK_OK = mark_safe(
    '<span class="badge badge-ok"><span class="badge-icon" aria-hidden="true">✓</span>OK</span>'
)
_NO_COVER = mark_safe('<span class="muted" title="Nothing sold in the last 7 days">—</span>')


# One row of the stock table and one item of its low-stock list. Built here
# rather than in the template: the page lists every product and denomination
# (hundreds), and one str.format per row, each text value escaped once, costs a
# small part of a template loop's variable lookups or of format_html per cell.
_STOCK_ROW = (
    '<tr id="stock-{product_id}-{slug}" data-available="{available}"><td>{name}</td>'
    '<td class="num">{denomination}</td><td class="num">{available}{expired}</td>'
    '<td class="num">{allocated}</td><td class="num">{delivered}</td>'
    '<td class="num">{blocked}</td><td class="num">{revoked}</td><td>{next_expiry}</td>'
    '<td class="num">{cover}</td><td>{badge}</td></tr>'
)
_LOW_ITEM = (
    "<li>\n"
    '        <span class="badge badge-warn"><span class="badge-icon" aria-hidden="true">!</span>'
    "Low stock</span>\n"
    "        <strong>{name}</strong> {denomination}:\n"
    '        {available} available <span class="sub">threshold {threshold}{cover}</span>\n'
    "      </li>"
)


@functools.cache
def _denomination_slug(denomination: Decimal) -> str:
    """The denomination in a row's id: 25.00 -> "2500" (few distinct values)."""
    return slugify(str(denomination))


def _stock_row_html(row: inventory_selectors.StockRow) -> str:
    """One row of the stock table: numbers as they are, text escaped."""
    return _STOCK_ROW.format(
        product_id=row.product_id,
        slug=_denomination_slug(row.denomination),
        available=row.available,
        name=escape(row.product_name),
        denomination=escape(money(row.denomination, row.currency)),
        expired=f' <span class="sub">{row.expired} expired</span>' if row.expired else "",
        allocated=row.allocated,
        delivered=row.delivered,
        blocked=row.blocked,
        revoked=row.revoked,
        next_expiry=when(row.next_expiry),
        cover=_NO_COVER if row.days_of_cover is None else row.days_of_cover,
        badge=_STOCK_LOW if row.low_stock else _STOCK_OK,
    )


def _low_stock_item_html(row: inventory_selectors.StockRow) -> str:
    """One item of the page's low-stock list."""
    cover = "" if row.days_of_cover is None else f" · {row.days_of_cover} days of cover"
    return _LOW_ITEM.format(
        name=escape(row.product_name),
        denomination=escape(money(row.denomination, row.currency)),
        available=row.available,
        threshold=row.low_stock_threshold,
        cover=cover,
    )


@require_GET
@permission_for("inventory_stock")
@reads_from_replica()
def inventory_stock(request: HtmxHttpRequest) -> HttpResponse:
    report = inventory_selectors.stock_report()
    rows = report.rows
    low = [row for row in rows if row.low_stock]
    context = {
        "rows": rows,
        "row_html": mark_safe("\n      ".join(_stock_row_html(row) for row in rows)),  # noqa: S308 - escaped per value
        "low_html": mark_safe("\n      ".join(_low_stock_item_html(row) for row in low)),  # noqa: S308 - escaped per value
        "low": low,
        "as_of": report.as_of,
    }
    template = page_or_partial(request, "dashboard/inventory/stock.html", "stock-body")
    return render(request, template, context)


# --- Import ---------------------------------------------------------------------


def _import_form_page(
    request: HtmxHttpRequest, form: ImportForm, *, status: int = 200, **extra: Any
) -> HttpResponse:
    template = page_or_partial(request, "dashboard/inventory/import.html", "import-form")
    return render(request, template, {"form": form, **extra}, status=status)


def _validate_upload(
    request: HtmxHttpRequest, form: ImportForm
) -> import_service.ImportPreview | None:
    """Validate the uploaded file as it streams; None, with the refusal on the form,
    when the service refuses the file."""
    upload: UploadedFile = form.cleaned_data["file"]
    # newline="" as the csv module wants; utf-8-sig drops a spreadsheet's BOM.
    text = io.TextIOWrapper(cast(IO[bytes], upload.file), encoding="utf-8-sig", newline="")
    try:
        return import_service.voucher_import_validate(
            product_id=form.cleaned_data["product"].pk,
            stream=text,
            file_name=upload.name or "upload.csv",
            actor=Actor.for_request(request),
        )
    except DomainError as error:
        form.add_error(None, error.message)
        return None
    finally:
        text.detach()


@require_http_methods(["GET", "POST"])
@permission_for("inventory_import")
def inventory_import(request: HtmxHttpRequest) -> HttpResponse:
    """Upload a CSV and validate it; nothing is imported until the preview is confirmed."""
    if request.method == "GET":
        return _import_form_page(request, ImportForm())
    # Refuse an oversized body before Django spools it to disk.
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_UPLOAD_BYTES + 64 * 1024:
        return _import_form_page(request, ImportForm(), status=413, upload_error=TOO_LARGE)
    form = ImportForm(request.POST, request.FILES)
    preview = _validate_upload(request, form) if form.is_valid() else None
    if preview is None:
        return _import_form_page(request, form, status=422)
    _keep_import_files(form.cleaned_data["file"], preview)
    return redirect("dashboard:inventory_import_preview", batch_id=preview.batch_id)


def _batch(batch_id: int) -> ImportBatch:
    batch = ImportBatch.objects.select_related("product").filter(pk=batch_id).first()
    if batch is None:
        raise Http404("No such import batch.")
    return batch


@require_GET
@permission_for("inventory_import_preview")
def inventory_import_preview(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    batch = _batch(batch_id)
    preview = _read_preview(batch.pk)
    # Importable, and the file and its preview are still here to import from.
    ready = (
        rules.batch_importable(batch)
        and preview is not None
        and import_uploads.import_upload_ready(batch_id=batch.pk)
    )
    context = {"batch": batch, "preview": preview, "ready": ready}
    template = page_or_partial(request, "dashboard/inventory/import_preview.html", "preview")
    return render(request, template, context)


def _commit_kept_file(request: HtmxHttpRequest, batch: ImportBatch) -> ImportBatch:
    """Import the file kept for the batch; FileNotFoundError once it is gone."""
    lines = import_uploads.import_upload_lines(batch_id=batch.pk)
    if lines is None:
        raise FileNotFoundError(f"the file of batch {batch.pk} is no longer kept")
    with not_found_as_404("No such import batch."):
        return import_service.voucher_import_commit(
            batch_id=batch.pk, stream=lines, actor=Actor.for_request(request)
        )


@require_POST
@permission_for("inventory_import_commit")
def inventory_import_commit(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    """Import the validated file kept for this batch: every row, or none."""
    batch = _batch(batch_id)
    try:
        imported = _commit_kept_file(request, batch)
    except FileNotFoundError:
        messages.error(request, "The validated file is no longer here; upload it again.")
        return redirect("dashboard:inventory_import")
    except DomainError as error:
        # The batch is now invalid (or never was importable): the file is of no more use.
        import_uploads.import_upload_discard(batch_id=batch.pk)
        messages.error(request, error.message)
        return redirect("dashboard:inventory_import_preview", batch_id=batch.pk)
    import_uploads.import_upload_discard(batch_id=batch.pk)
    messages.success(
        request, f"Imported {imported.imported_count} vouchers into {batch.product.name}"
    )
    return redirect("dashboard:inventory_stock")


# --- Vouchers -------------------------------------------------------------------


def _voucher_rows() -> QuerySet[Voucher]:
    return Voucher.objects.select_related("product").only(*_VOUCHER_COLUMNS)


def _voucher_page(form: VoucherFilterForm) -> tuple[list[Voucher], int | None]:
    """One page by keyset on id (ascending) and the id the next page starts after."""
    data = form.cleaned_data
    if data.get("expiring_within") is not None:
        ids = inventory_selectors.expiring_vouchers(within_days=data["expiring_within"]).values(
            "id"
        )
        qs = _voucher_rows().filter(pk__in=ids)
    else:
        qs = _voucher_rows()
    if data.get("product"):
        qs = qs.filter(product=data["product"])
    if data.get("status"):
        qs = qs.filter(status=data["status"])
    if data.get("batch"):
        qs = qs.filter(batch_id=data["batch"])
    if data.get("after"):
        qs = qs.filter(pk__gt=data["after"])
    rows = list(qs.order_by("id")[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, rows[-1].pk if more else None


@require_GET
@permission_for("inventory_vouchers")
@reads_from_replica()
def inventory_vouchers(request: HtmxHttpRequest) -> HttpResponse:
    form = VoucherFilterForm(request.GET)
    rows: list[Voucher] | None = None
    next_after = None
    if form.is_valid():
        rows, next_after = _voucher_page(form)
    context = {"form": form, "vouchers": rows, "next_after": next_after}
    template = page_or_partial(request, "dashboard/inventory/vouchers.html", "voucher-results")
    return render(request, template, context, status=200 if rows is not None else 400)


@require_POST
@permission_for("inventory_voucher_action")
def inventory_voucher_action(
    request: HtmxHttpRequest, voucher_id: int, action: str
) -> HttpResponse:
    """Block, unblock or revoke one voucher with a reason; htmx gets the row back."""
    if action not in VOUCHER_ACTIONS:
        raise Http404("No such action.")
    label, service = VOUCHER_ACTIONS[action]
    form, error = _act_with_reason(
        request, partial(service, voucher_id=voucher_id), missing="No such voucher."
    )
    if not request.htmx:
        flash_outcome(request, f"{label} voucher {voucher_id}", error=error, done="done.")
        return redirect("dashboard:inventory_vouchers")
    voucher = _voucher_rows().filter(pk=voucher_id).first()
    if voucher is None:
        raise Http404("No such voucher.")
    context = {"voucher": voucher, "row_error": error, "failed_action": action if error else ""}
    template = "dashboard/inventory/vouchers.html#voucher-row"
    return render(request, template, context, status=_action_status(form, error))


def _act_with_reason(
    request: HtmxHttpRequest, service: Callable[..., object], *, missing: str
) -> tuple[ReasonForm, str]:
    """Run a block/revoke service with the posted reason; the refusal message, if any."""
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return form, "Give a reason to confirm."
    try:
        with not_found_as_404(missing):
            service(actor=Actor.for_request(request), reason=form.cleaned_data["reason"])
    except DomainError as refusal:
        return form, refusal.message
    return form, ""


def _action_status(form: ReasonForm, error: str) -> int:
    """422 without a reason, 409 when the service refused, else 200."""
    return 422 if not form.is_valid() else 409 if error else 200


# --- Batches --------------------------------------------------------------------


def _batch_rows() -> QuerySet[ImportBatch]:
    return ImportBatch.objects.select_related("product", "uploaded_by").only(
        "id",
        "product__name",
        "uploaded_by__username",
        "file_name",
        "status",
        "row_count",
        "imported_count",
        "error_count",
        "note",
        "created_at",
        "completed_at",
    )


@require_GET
@permission_for("inventory_batches")
@reads_from_replica()
def inventory_batches(request: HtmxHttpRequest) -> HttpResponse:
    """Import batches, newest first, by keyset on id."""
    before = request.GET.get("before", "")
    qs = _batch_rows()
    if before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs.order_by("-id")[: PAGE_SIZE + 1])
    next_before = rows[PAGE_SIZE - 1].pk if len(rows) > PAGE_SIZE else None
    context = {"batches": rows[:PAGE_SIZE], "next_before": next_before}
    template = page_or_partial(request, "dashboard/inventory/batches.html", "batch-results")
    return render(request, template, context)


@require_POST
@permission_for("inventory_batch_action")
def inventory_batch_action(request: HtmxHttpRequest, batch_id: int, action: str) -> HttpResponse:
    """Quarantine (block) or revoke every voucher of a batch still in stock, with a reason."""
    if action not in BATCH_ACTIONS:
        raise Http404("No such action.")
    label, service = BATCH_ACTIONS[action]
    form, error = _act_with_reason(
        request, partial(service, batch_id=batch_id), missing="No such import batch."
    )
    if not request.htmx:
        flash_outcome(request, f"{label} {batch_id}", error=error, done="done.")
        return redirect("dashboard:inventory_batches")
    batch = _batch_rows().filter(pk=batch_id).first()
    if batch is None:
        raise Http404("No such import batch.")
    context = {"batch": batch, "row_error": error, "failed_action": action if error else ""}
    template = "dashboard/inventory/batches.html#batch-row"
    return render(request, template, context, status=_action_status(form, error))
