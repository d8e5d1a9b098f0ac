"""Admin of money: wallets and their ledger, to read.

Money moves only through the dashboard's audited services (top-ups,
adjustments, refunds); nothing here changes a balance.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from orders.admin.base import AuditedAdmin, ReadOnlyAdmin
from orders.models import Wallet, WalletEntry
from orders.services.clients import wallet_open


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
