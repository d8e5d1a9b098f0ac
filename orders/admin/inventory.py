"""Admin of the voucher inventory: vouchers (masked) and their import batches.

Voucher secrets never leave the database through the admin: the encrypted
columns are not in any form, the change list does not even load them, and
the detail page shows only masks.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.admin.base import VOUCHER_SECRETS, AuditedAdmin, is_changelist, masked
from orders.crypto import fingerprint
from orders.models import ImportBatch, Voucher


@admin.register(Voucher)
class VoucherAdmin(AuditedAdmin):
    """Inventory units, masked. Codes are revealed only in the dashboard (audited).

    Searching for a full card number matches its keyed fingerprint, so a code
    can be found without decrypting anything.
    """

    list_display = (
        "id",
        "product",
        "denomination",
        "masked_card_number",
        "status",
        "expires_at",
        "source",
        "batch",
    )
    list_filter = ("status", "source", "product", "expires_at")
    search_fields = ("card_last4", "product__name", "status_reason")
    list_select_related = ("product", "batch")
    # The secrets, their fingerprint and last4 are derived from the import: shown masked only.
    exclude = (*VOUCHER_SECRETS, "fingerprint", "card_last4")
    readonly_fields = (
        "product",
        "denomination",
        "masked_card_number",
        "masked_pin_code",
        "masked_reference",
        "masked_claim_url",
        "status",
        "source",
        "batch",
        "vendor",
        "created_at",
        "updated_at",
        "allocated_at",
        "delivered_at",
    )

    @admin.display(description="Card number")
    def masked_card_number(self, obj: Voucher) -> str:
        return obj.masked_card_number

    @admin.display(description="PIN")
    def masked_pin_code(self, obj: Voucher) -> str:
        return masked(obj.pin_code)

    @admin.display(description="Reference number")
    def masked_reference(self, obj: Voucher) -> str:
        return masked(obj.voucher_reference_number)

    @admin.display(description="Claim URL")
    def masked_claim_url(self, obj: Voucher) -> str:
        return masked(obj.claim_url)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Voucher]:
        queryset = super().get_queryset(request)
        if is_changelist(request):
            # The list shows only card_last4: leave the ciphertexts in the database.
            return queryset.defer(*VOUCHER_SECRETS)
        return queryset

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Voucher], search_term: str
    ) -> tuple[QuerySet[Voucher], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if len(term) >= 8:
            results |= queryset.filter(fingerprint=fingerprint(term))
        return results, may_have_duplicates

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Codes arrive through the audited bulk import, never typed in here.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Block or revoke instead; a delivered code must stay traceable.
        return False


@admin.register(ImportBatch)
class ImportBatchAdmin(AuditedAdmin):
    list_display = (
        "__str__",
        "product",
        "status",
        "row_count",
        "imported_count",
        "error_count",
        "uploaded_by",
        "created_at",
    )
    list_filter = ("status", "product")
    search_fields = ("file_name", "file_sha256", "product__name")
    list_select_related = ("product", "uploaded_by")
    readonly_fields = (
        "product",
        "uploaded_by",
        "file_name",
        "file_sha256",
        "status",
        "row_count",
        "imported_count",
        "error_count",
        "created_at",
        "completed_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
