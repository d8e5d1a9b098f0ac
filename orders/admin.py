"""Django admin: catalog and inventory to manage, everything else to read.

Voucher secrets never leave the database through the admin: the encrypted
columns are not in any form, the change lists do not even load them, and the
detail pages show only masks. Money, status and the audit trail change only
through services, so their admins are read-only.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders.crypto import fingerprint
from orders.models import (
    ApiCredential,
    AuditChainHead,
    AuditEvent,
    Client,
    ImportBatch,
    Order,
    OrderItem,
    Product,
    StatusChange,
    Vendor,
    Voucher,
    Wallet,
    WalletEntry,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from orders.services.actors import Actor
from orders.services.clients import credential_revoke

MASK = "••••"
VOUCHER_SECRETS = ("card_number", "pin_code", "voucher_reference_number", "claim_url")
# Keys whose values are masked wherever a JSON payload is shown.
SECRET_KEYS = {*VOUCHER_SECRETS, "secret", "api_secret", "password", "token"}


def _masked(value: object) -> str:
    return MASK if value else "—"


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_KEYS and v else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def _is_changelist(request: HttpRequest) -> bool:
    url_name = getattr(request.resolver_match, "url_name", None) or ""
    return url_name.endswith("_changelist")


def _actor(request: HttpRequest) -> Actor:
    return Actor.for_user(
        request.user,
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable only: these rows are written by services (or are append-only)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Catalog ------------------------------------------------------------------


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "adapter", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "code")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "brand",
        "kind",
        "currency",
        "face_values",
        "delivery_type",
        "vendor",
        "is_active",
    )
    list_filter = ("is_active", "kind", "delivery_type", "currency", "vendor")
    search_fields = ("name", "brand")
    list_select_related = ("vendor",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Denominations")
    def face_values(self, obj: Product) -> str:
        if obj.is_range:
            return f"{obj.min_denomination}–{obj.max_denomination}"
        return ", ".join(str(value) for value in obj.denomination_list)


# --- Clients, credentials, wallets -------------------------------------------


class WalletInline(ReadOnlyInline):
    model = Wallet
    fields = ("currency", "balance", "updated_at")
    readonly_fields = fields


class ApiCredentialInline(ReadOnlyInline):
    model = ApiCredential
    fields = ("public_key", "mode", "label", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("name", "contact_email", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "contact_email")
    readonly_fields = ("created_at",)
    inlines = (WalletInline, ApiCredentialInline)


@admin.register(ApiCredential)
class ApiCredentialAdmin(admin.ModelAdmin):
    """Issued by `create_client` (the secret is shown once there); revocable here."""

    list_display = ("public_key", "client", "mode", "label", "created_at", "last_used_at", "state")
    list_filter = ("mode", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("public_key", "label", "client__name")
    list_select_related = ("client",)
    fields = ("client", "public_key", "mode", "label", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("client", "public_key", "mode", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    @admin.display(description="State")
    def state(self, obj: ApiCredential) -> str:
        return "revoked" if obj.revoked_at else "active"

    @admin.action(description="Revoke selected credentials", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiCredential]) -> None:
        actor = _actor(request)
        pending = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for credential_id in pending:
            credential_revoke(credential_id=credential_id, actor=actor)
        self.message_user(request, f"Revoked {len(pending)} credential(s).", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoke instead: orders and the audit trail keep pointing at it.
        return False


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ("client", "currency", "balance", "updated_at", "ledger")
    list_filter = ("currency",)
    search_fields = ("client__name",)
    list_select_related = ("client",)
    readonly_fields = ("balance", "created_at", "updated_at", "ledger")

    @admin.display(description="Ledger")
    def ledger(self, obj: Wallet) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:orders_walletentry_changelist") + f"?wallet__id__exact={obj.pk}"
        return format_html('<a href="{}">entries</a>', url)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A wallet may be opened here (empty); its owner and currency then stay.
        if obj is not None:
            return ("client", "currency", *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WalletEntry)
class WalletEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "wallet",
        "kind",
        "amount",
        "balance_after",
        "order",
        "actor_label",
        "note",
    )
    list_filter = ("kind", "wallet__currency")
    search_fields = ("wallet__client__name", "order__reference_code", "note", "actor_label")
    list_select_related = ("wallet__client", "order")
    raw_id_fields = ("wallet", "order", "actor_user")


# --- Orders -------------------------------------------------------------------


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("position", "status", "voucher", "recharge_status", "delivered_at", "failure_reason")
    readonly_fields = fields


class StatusChangeInline(ReadOnlyInline):
    model = StatusChange
    fields = (
        "created_at",
        "from_status",
        "from_sub_status",
        "to_status",
        "to_sub_status",
        "actor_label",
        "note",
    )
    readonly_fields = fields
    show_change_link = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    """Read-only: orders change through the dashboard's audited actions.

    The change list keeps Django's defaults on purpose (benchmarks compare the
    dashboard with the stock admin); only the status filter and the reference
    search are added.
    """

    list_filter = ("status",)
    search_fields = ("reference_code",)
    inlines = (OrderItemInline, StatusChangeInline)


@admin.register(OrderItem)
class OrderItemAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "order", "status", "voucher", "recharge_status", "delivered_at")
    list_filter = ("status", "recharge_status")
    search_fields = ("order__reference_code",)
    list_select_related = ("order", "voucher")

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderItem]:
        queryset = super().get_queryset(request).select_related("order", "voucher")
        return queryset.defer(*(f"voucher__{name}" for name in VOUCHER_SECRETS))


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "order",
        "from_status",
        "from_sub_status",
        "to_status",
        "to_sub_status",
        "actor_label",
        "note",
    )
    list_filter = ("to_status", "to_sub_status")
    search_fields = ("order__reference_code", "actor_label")
    list_select_related = ("order",)


# --- Inventory ----------------------------------------------------------------


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
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
        return _masked(obj.pin_code)

    @admin.display(description="Reference number")
    def masked_reference(self, obj: Voucher) -> str:
        return _masked(obj.voucher_reference_number)

    @admin.display(description="Claim URL")
    def masked_claim_url(self, obj: Voucher) -> str:
        return _masked(obj.claim_url)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Voucher]:
        queryset = super().get_queryset(request)
        if _is_changelist(request):
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
class ImportBatchAdmin(admin.ModelAdmin):
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


# --- Audit --------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_label",
        "order",
        "voucher",
        "reason",
        "ip_address",
    )
    list_filter = ("action",)
    search_fields = ("action", "actor_label", "reason", "order__reference_code")
    list_select_related = ("order", "voucher")
    fields = (
        "created_at",
        "action",
        "actor_label",
        "actor_user",
        "actor_credential",
        "order",
        "voucher",
        "reason",
        "ip_address",
        "user_agent",
        "masked_data",
        "chain",
        "seq",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields

    @admin.display(description="Data")
    def masked_data(self, obj: AuditEvent) -> str:
        return json.dumps(_mask_json(obj.data), indent=2, sort_keys=True)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        queryset = super().get_queryset(request).select_related("order", "voucher")
        return queryset.defer(*(f"voucher__{name}" for name in VOUCHER_SECRETS))


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("chain", "seq", "last_hash")


# --- Webhooks -----------------------------------------------------------------


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "client", "events", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "client__name")
    list_select_related = ("client",)
    fields = ("client", "url", "events", "is_active", "masked_secret", "created_at")
    readonly_fields = ("client", "masked_secret", "created_at")

    @admin.display(description="Signing secret")
    def masked_secret(self, obj: WebhookEndpoint) -> str:
        return _masked(obj.secret)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        queryset = super().get_queryset(request)
        if _is_changelist(request):
            return queryset.defer("secret")
        return queryset

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Endpoints need a generated signing secret: clients register them via the API.
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "event",
        "endpoint",
        "order",
        "status",
        "attempts",
        "last_status_code",
        "delivered_at",
    )
    list_filter = ("status", "event")
    search_fields = ("order__reference_code", "endpoint__url")
    list_select_related = ("endpoint", "order")
    fields = (
        "endpoint",
        "order",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "give_up_at",
        "delivered_at",
        "last_status_code",
        "created_at",
        "masked_payload",
    )
    readonly_fields = fields

    @admin.display(description="Payload")
    def masked_payload(self, obj: WebhookDelivery) -> str:
        return json.dumps(_mask_json(obj.payload), indent=2, sort_keys=True)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        queryset = super().get_queryset(request).select_related("endpoint", "order")
        return queryset.defer("endpoint__secret")


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ("attempted_at", "delivery", "status_code", "duration_ms", "error")
    list_filter = ("status_code",)
    list_select_related = ("delivery",)
