"""Admin of who may do what: clients and their API credentials, staff users and groups.

Who holds which permission decides everything else: changes here are audited too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential

from orders.admin.base import AuditedAdmin, ReadOnlyInline
from orders.dashboard.stepup import step_up
from orders.models import ApiCredential, Client, Wallet
from orders.services.actors import Actor
from orders.services.clients import credential_revoke
from orders.services.second_factor import second_factor_reset


class WalletInline(ReadOnlyInline):
    model = Wallet
    fields = ("currency", "balance", "updated_at")
    readonly_fields = fields


class ApiCredentialInline(ReadOnlyInline):
    model = ApiCredential
    fields = (
        "public_key",
        "mode",
        "label",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    )
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
    """Issued by `create_client` or the dashboard's clients workspace (the secret is shown
    once there); revocable here."""

    list_display = (
        "public_key",
        "client",
        "mode",
        "label",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "state",
    )
    list_filter = ("mode", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("public_key", "label", "client__name")
    list_select_related = ("client",)
    fields = (
        "client",
        "public_key",
        "mode",
        "label",
        "scopes",
        "allowed_networks",
        "rate_limit_per_minute",
        "created_at",
        "last_used_at",
        "last_used_ip",
        "previous_secret_valid_until",
        "revoked_at",
    )
    # Only the label is edited here. Scopes, networks and the rate-limit plan
    # change through services/clients.py (checked, audited, the API's cache
    # cleared; the dashboard's clients workspace), not by editing JSON; secrets
    # through rotate_credential or the workspace.
    readonly_fields = tuple(name for name in fields if name != "label")
    actions = ("revoke",)

    @admin.display(description="State")
    def state(self, obj: ApiCredential) -> str:
        return "revoked" if obj.revoked_at else "active"

    @admin.action(description="Revoke selected credentials", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiCredential]) -> None:
        actor = Actor.for_request(request)
        pending = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        for credential_id in pending:
            credential_revoke(credential_id=credential_id, actor=actor)
        self.message_user(request, f"Revoked {len(pending)} credential(s).", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revoke instead: orders and the audit trail keep pointing at it.
        return False


# --- Staff accounts -------------------------------------------------------------
# Django's own User and Group admins, replaced by audited ones.

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)
# Second factors change only through the sign-in pages and the audited reset below,
# not by editing or deleting devices.
for device_model in (TOTPDevice, StaticDevice, WebAuthnCredential, WebAuthnAttestation):
    if admin.site.is_registered(device_model):
        admin.site.unregister(device_model)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):  # type: ignore[misc]
    """Staff users; "Reset second factor" (a lost phone) asks for a reason, audited."""

    actions = ("reset_second_factor",)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Resetting someone's second factor: a recent second factor of one's own first.
        return step_up(super().changelist_view)(request, extra_context)

    @admin.action(
        description="Reset second factor (they enrol again at next sign-in)",
        permissions=["change"],
    )
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        users = list(queryset.order_by("username"))
        reason = request.POST.get("reason", "").strip()
        if "confirm" not in request.POST or not reason:
            context = {
                **self.admin_site.each_context(request),
                "title": "Reset second factor",
                "users": users,
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "missing_reason": "confirm" in request.POST,
            }
            return TemplateResponse(request, "admin/second_factor_reset.html", context)
        actor = Actor.for_request(request)
        for user in users:
            second_factor_reset(user=user, actor=actor, reason=reason)
        self.message_user(
            request,
            f"Second factor reset for {len(users)} user(s); they enrol again at next sign-in.",
            messages.SUCCESS,
        )
        return None


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass
