"""Django admin: catalog and inventory to manage, everything else to read.

Voucher secrets never leave the database through the admin: the encrypted
columns are not in any form, the change lists do not even load them, and the
detail pages show only masks. Money, status and the audit trail change only
through services, so their admins are read-only. Every add, change, delete
and action writes an AuditEvent (admin.*) with the fields' before/after, never
a secret; products' prices change through services/catalog.py (maker-checker).
Deletes are for superusers only, and only where nothing points at the row.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders.crypto import fingerprint
from orders.errors import DomainError
from orders.models import (
    ApiCredential,
    AuditChainHead,
    AuditEvent,
    Client,
    ImportBatch,
    Order,
    OrderItem,
    PriceChange,
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
from orders.services.audit import audit_record
from orders.services.catalog import (
    price_change_approve,
    price_change_reject,
    product_create,
    product_update,
)
from orders.services.clients import credential_revoke, wallet_open

MASK = "••••"
VOUCHER_SECRETS = ("card_number", "pin_code", "voucher_reference_number", "claim_url")
# Keys whose values are masked wherever a JSON payload is shown.
SECRET_KEYS = {*VOUCHER_SECRETS, "secret", "api_secret", "password", "token"}
# Never written into an audit event's data, even as a hash.
AUDIT_MASKED = {*SECRET_KEYS, "secret_hash", "fingerprint"}


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
        ip_address=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.headers.get("User-Agent", ""),
    )


def _field_values(obj: Model, names: list[str]) -> dict[str, Any]:
    """The stored values of `names` (related ids for foreign keys, sorted ids for m2m)."""
    model = type(obj)
    concrete = [n for n in names if not model._meta.get_field(n).many_to_many]
    attnames = {name: getattr(model._meta.get_field(name), "attname", name) for name in concrete}
    row = model._default_manager.filter(pk=obj.pk).values(*attnames.values()).first() or {}
    values = {name: row.get(attname) for name, attname in attnames.items()}
    for name in names:
        if name not in values:
            values[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
    return values


def _audit_value(name: str, value: Any) -> Any:
    return MASK if name in AUDIT_MASKED and value not in (None, "") else value


def _audit_actions(action: Any, name: str) -> Any:
    """The action, writing an admin.action event (model, action, ids) when it runs."""
    func: Callable[..., Any] = action.func

    @functools.wraps(func)
    def audited(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:1000])
            result = func(modeladmin, request, queryset)
            audit_record(
                action="admin.action",
                actor=_actor(request),
                data={
                    "model": modeladmin.model._meta.label_lower,
                    "action": name,
                    "pks": ids,
                    "count": len(ids),
                },
            )
        return result

    return dataclasses.replace(action, func=audited)


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change, delete and action here also writes an AuditEvent.

    The event's data names the model, the row and each changed form field with
    its value before (read from the database) and after; secrets are masked.
    """

    def _audited_fields(self, form: ModelForm) -> list[str]:
        fields = {
            f.name for f in [*self.model._meta.concrete_fields, *self.model._meta.many_to_many]
        }
        return [name for name in form.fields if name in fields]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        names = self._audited_fields(form)
        obj._admin_audit_before = _field_values(obj, names) if change else dict.fromkeys(names)
        self._save(request, obj, form, change)

    def _save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)

    def _changes(self, obj: Any) -> dict[str, dict[str, Any]]:
        before: dict[str, Any] = getattr(obj, "_admin_audit_before", {})
        after = _field_values(obj, list(before)) if obj.pk is not None else {}
        return {
            name: {"before": _audit_value(name, before[name]), "after": _audit_value(name, value)}
            for name, value in after.items()
            if value != before[name]
        }

    def _audit(self, request: HttpRequest, action: str, obj: Any, **data: Any) -> None:
        audit_record(
            action=action,
            actor=_actor(request),
            voucher_id=obj.pk if isinstance(obj, Voucher) else None,
            data={
                "model": obj._meta.label_lower,
                "pk": obj.pk,
                "object": str(obj)[:200],
                **data,
            },
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        extra = getattr(obj, "_admin_audit_extra", {})
        self._audit(request, "admin.add", obj, changes=self._changes(obj), **extra)
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        extra = getattr(obj, "_admin_audit_extra", {})
        if isinstance(message, list):  # field labels only, as django_admin_log keeps them
            extra = {"message": message, **extra}
        self._audit(request, "admin.change", obj, changes=self._changes(obj), **extra)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, "admin.delete", obj)
        return entries

    def get_actions(
        self, request: HttpRequest, action_location: Any = ActionLocation.CHANGE_LIST
    ) -> Any:
        actions = super().get_actions(request, action_location=action_location)
        # delete_selected is audited per row by log_deletions once confirmed.
        return {
            name: action if name == "delete_selected" else _audit_actions(action, name)
            for name, action in actions.items()
        }

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = getattr(request, "user", None)
        return bool(getattr(user, "is_superuser", False)) and super().has_delete_permission(
            request, obj
        )


class ReadOnlyAdmin(AuditedAdmin):
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
class VendorAdmin(AuditedAdmin):
    """The adapter is a select of the registry (orders/vendors/registry.py), never a path."""

    list_display = ("name", "code", "adapter", "is_active", "created_at")
    list_filter = ("is_active", "adapter")
    search_fields = ("name", "code")


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    """Price fields are saved by services/catalog.py: audited, large changes wait for approval."""

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

    def _save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        names = self._audited_fields(form)
        values = {name: getattr(obj, name) for name in names}
        if change:
            saved = product_update(
                product_id=obj.pk,
                values={name: values[name] for name in form.changed_data if name in values},
                actor=_actor(request),
            )
        else:
            saved = product_create(values=values, actor=_actor(request))
        obj.pk = saved.product.pk
        obj.refresh_from_db()
        change_request = saved.price_change
        if change_request is None:
            return
        obj._admin_audit_extra = {"price_change_id": change_request.pk}
        if saved.pending:
            url = reverse("admin:orders_pricechange_change", args=[change_request.pk])
            self.message_user(
                request,
                format_html(
                    'The price change ({}) waits for a second approver: <a href="{}">'
                    "price change {}</a>. Until then the product keeps its prices.",
                    "; ".join(change_request.approval_reasons),
                    url,
                    change_request.pk,
                ),
                messages.WARNING,
            )


@admin.register(PriceChange)
class PriceChangeAdmin(ReadOnlyAdmin):
    """Price changes: applied ones for the record, pending ones to approve or reject.

    Approving needs orders.approve_price_change (finance; superusers) and a
    user other than the one who asked; services/catalog.py enforces both.
    """

    list_display = (
        "requested_at",
        "product",
        "status",
        "summary",
        "reasons",
        "requested_label",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    search_fields = ("product__name", "requested_label")
    list_select_related = ("product", "decided_by")
    actions = ("approve", "reject")
    fields = (
        "product",
        "status",
        "summary",
        "reasons",
        "requested_label",
        "requested_at",
        "decided_by",
        "decided_at",
        "applied_at",
        "decision_note",
    )
    readonly_fields = fields

    @admin.display(description="Change (before → after)")
    def summary(self, obj: PriceChange) -> str:
        return "; ".join(
            f"{name}: {step.get('before')} → {step.get('after')}"
            for name, step in (obj.changes or {}).items()
        )

    @admin.display(description="Needs approval because")
    def reasons(self, obj: PriceChange) -> str:
        return "; ".join(obj.approval_reasons or []) or "—"

    def has_approve_price_change_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.approve_price_change")

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[PriceChange], decide: Any, done: str
    ) -> None:
        actor = _actor(request)
        count = 0
        for change_id in queryset.order_by("id").values_list("pk", flat=True):
            try:
                decide(price_change_id=change_id, actor=actor)
            except DomainError as refusal:
                self.message_user(
                    request, f"Price change {change_id}: {refusal.message}", messages.ERROR
                )
            else:
                count += 1
        if count:
            self.message_user(request, f"{done} {count} price change(s).", messages.SUCCESS)

    @admin.action(
        description="Approve selected price changes", permissions=["approve_price_change"]
    )
    def approve(self, request: HttpRequest, queryset: QuerySet[PriceChange]) -> None:
        self._decide(request, queryset, price_change_approve, "Approved")

    @admin.action(description="Reject selected price changes", permissions=["approve_price_change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[PriceChange]) -> None:
        self._decide(request, queryset, price_change_reject, "Rejected")


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
class ClientAdmin(AuditedAdmin):
    list_display = ("name", "contact_email", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "contact_email")
    readonly_fields = ("created_at",)
    inlines = (WalletInline, ApiCredentialInline)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deactivate instead: wallets, orders and the ledger keep pointing at it.
        return False


@admin.register(ApiCredential)
class ApiCredentialAdmin(AuditedAdmin):
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
class WalletAdmin(AuditedAdmin):
    """Money moves only through the dashboard's audited services: nothing here is editable.

    A superuser may open an empty wallet (balance 0) for a client.
    """

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
        if obj is not None:
            return ("client", "currency", *self.readonly_fields)
        return self.readonly_fields

    def _save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        wallet = wallet_open(client=obj.client, currency=obj.currency)
        obj.pk = wallet.pk
        obj.refresh_from_db()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

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
class WebhookEndpointAdmin(AuditedAdmin):
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


# --- Staff accounts -------------------------------------------------------------
# Who holds which permission decides everything above: changes here are audited too.

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):  # type: ignore[misc]
    pass


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass
