"""Admin of the audit trail: events (data masked) and the heads of their hash chains, to read."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.admin.base import VOUCHER_SECRETS, ReadOnlyAdmin, masked_json_text
from orders.models import AuditChainHead, AuditEvent


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
        return masked_json_text(obj.data)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        queryset = super().get_queryset(request).select_related("order", "voucher")
        return queryset.defer(*(f"voucher__{name}" for name in VOUCHER_SECRETS))


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("chain", "seq", "last_hash")
