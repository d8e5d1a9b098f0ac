"""Admin of the catalog: vendors, products and the price changes awaiting approval.

Products' prices change through services/catalog.py (maker-checker): the
admin saves a product through that service, never with a plain save().
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from orders.admin.base import AuditedAdmin, ReadOnlyAdmin
from orders.dashboard.stepup import step_up
from orders.errors import DomainError
from orders.models import PriceChange, Product, Vendor
from orders.services.actors import Actor
from orders.services.catalog import (
    price_change_approve,
    price_change_reject,
    product_create,
    product_update,
)


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

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Saving a product can change its prices: a recent second factor first.
        return step_up(super().changeform_view)(request, *args, **kwargs)

    def _save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        names = self._audited_fields(form)
        values = {name: getattr(obj, name) for name in names}
        if change:
            saved = product_update(
                product_id=obj.pk,
                values={name: values[name] for name in form.changed_data if name in values},
                actor=Actor.for_request(request),
            )
        else:
            saved = product_create(values=values, actor=Actor.for_request(request))
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

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Approving or rejecting (the changelist's actions): a recent second factor first.
        return step_up(super().changelist_view)(request, extra_context)

    def has_approve_price_change_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.approve_price_change")

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[PriceChange], decide: Any, done: str
    ) -> None:
        actor = Actor.for_request(request)
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
