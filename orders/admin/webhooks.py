"""Admin of webhooks: clients' endpoints (secret masked), deliveries and attempts."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.admin.base import AuditedAdmin, ReadOnlyAdmin, is_changelist, masked, masked_json_text
from orders.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


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
        return masked(obj.secret)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        queryset = super().get_queryset(request)
        if is_changelist(request):
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
        return masked_json_text(obj.payload)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        queryset = super().get_queryset(request).select_related("endpoint", "order")
        return queryset.defer("endpoint__secret")


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ("attempted_at", "delivery", "status_code", "duration_ms", "error")
    list_filter = ("status_code",)
    list_select_related = ("delivery",)
