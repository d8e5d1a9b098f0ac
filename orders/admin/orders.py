"""Admin of orders, their items and their timeline, to read.

Status changes only through the one transition function (services), so
these admins are read-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.admin.base import VOUCHER_SECRETS, ReadOnlyAdmin, ReadOnlyInline
from orders.models import Order, OrderItem, StatusChange

# One step of an order's timeline, as the order page and the change list show it.
STATUS_CHANGE_COLUMNS = (
    "from_status",
    "from_sub_status",
    "to_status",
    "to_sub_status",
    "actor_label",
    "note",
)


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("position", "status", "voucher", "recharge_status", "delivered_at", "failure_reason")
    readonly_fields = fields


class StatusChangeInline(ReadOnlyInline):
    model = StatusChange
    fields = ("created_at", *STATUS_CHANGE_COLUMNS)
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
    list_display = ("created_at", "order", *STATUS_CHANGE_COLUMNS)
    list_filter = ("to_status", "to_sub_status")
    search_fields = ("order__reference_code", "actor_label")
    list_select_related = ("order",)
