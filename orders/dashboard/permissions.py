"""The one table of dashboard view -> required permission, and its decorator.

Every dashboard view is wrapped in `@permission_for("<view name>")`; the
navigation is built from the same table, so a link is shown exactly when the
view behind it would answer. A superuser holds every permission.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

# View name (in the "dashboard" namespace) -> the permission it requires.
# `orders.view_product` is held by every staff role, so it gates the overview.
PERMISSIONS: dict[str, str] = {
    "overview": "orders.view_product",
    "order_list": "orders.view_order",
    "order_row": "orders.view_order",
    "order_detail": "orders.view_order",
    "voucher_masked": "orders.view_order",
    "voucher_reveal": "orders.reveal_voucher",
    "order_cancel": "orders.cancel_order",
    "order_retry": "orders.retry_order",
    "order_resend": "orders.resend_delivery",
    "audit_log": "orders.view_audit_log",
    "inventory_stock": "orders.view_voucher",
    "inventory_import": "orders.import_vouchers",
    "inventory_import_preview": "orders.import_vouchers",
    "inventory_import_commit": "orders.import_vouchers",
    "inventory_vouchers": "orders.view_voucher",
    "inventory_voucher_action": "orders.block_voucher",
    "inventory_batches": "orders.view_importbatch",
    "inventory_batch_action": "orders.block_voucher",
    "refund_queue": "orders.approve_refund",
    "refund_decide": "orders.approve_refund",
    "wallet_list": "orders.view_wallet",
    "wallet_detail": "orders.view_wallet",
    "wallet_top_up": "orders.approve_refund",
    "wallet_adjust": "orders.change_wallet",  # no role holds it: superusers only
    # Large top-ups and adjustments wait here for a second user; approving an
    # adjustment also needs wallet_adjust's permission (checked in the view).
    "credit_queue": "orders.approve_refund",
    "credit_decide": "orders.approve_refund",
    "reconciliation": "orders.view_reconciliation",
    "export_orders": "orders.export_orders",
    "export_refunds": "orders.export_orders",
    "export_ledger": "orders.export_orders",
    # The clients workspace (clients.py): onboarding a partner and its credentials,
    # webhooks, rate-limit plans and recent API errors. Every page, reads included,
    # needs orders.manage_clients: support holds orders.view_client (a client's name
    # on an order) but must not read credentials, allowlists or webhook URLs. The
    # permission is granted only with orders.view_client (finance; superusers hold
    # everything), so viewing needs both. Each change is its own view (and POST),
    # so a step-up requirement can be added to one without the others.
    "client_list": "orders.manage_clients",
    "client_create": "orders.manage_clients",
    "client_detail": "orders.manage_clients",
    "client_wallet_open": "orders.manage_clients",
    "client_credential_issue": "orders.manage_clients",
    "client_credential_access": "orders.manage_clients",
    "client_credential_rate_limit": "orders.manage_clients",
    "client_credential_rotate": "orders.manage_clients",
    "client_credential_revoke": "orders.manage_clients",
    "client_webhook_create": "orders.manage_clients",
    "client_webhook_detail": "orders.manage_clients",
    "client_webhook_deactivate": "orders.manage_clients",
    "client_webhook_rotate": "orders.manage_clients",
    "client_webhook_test": "orders.manage_clients",
    "client_webhook_replay": "orders.manage_clients",
}


@dataclass(frozen=True)
class NavItem:
    view: str
    label: str


NAVIGATION: list[NavItem] = [
    NavItem("overview", "Overview"),
    NavItem("order_list", "Orders"),
    NavItem("inventory_stock", "Inventory"),
    NavItem("refund_queue", "Refunds"),
    NavItem("wallet_list", "Wallets"),
    NavItem("client_list", "Clients"),
    NavItem("credit_queue", "Credits"),
    NavItem("reconciliation", "Reconciliation"),
    NavItem("audit_log", "Audit log"),
]


def may_use(user: Any, view: str) -> bool:
    """Whether `user` may open the dashboard view named `view`."""
    return bool(user.is_authenticated and user.has_perm(PERMISSIONS[view]))


def permission_for(
    view: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Sign-in and the table's permission for `view`; 403 when signed in without it.

    An htmx request whose session expired is sent to the login page with the
    page the user was on (not the fragment URL) as `next`.
    """
    if view not in PERMISSIONS:
        raise KeyError(f"{view!r} is missing from orders.dashboard.permissions.PERMISSIONS")

    def decorator(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                htmx = getattr(request, "htmx", None)
                if htmx:
                    current = urlsplit(htmx.current_url or "")
                    back = current.path + (f"?{current.query}" if current.query else "")
                    response = redirect_to_login(back or request.get_full_path())
                    return HttpResponse(status=204, headers={"HX-Redirect": response["Location"]})
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(PERMISSIONS[view]):
                raise PermissionDenied
            return func(request, *args, **kwargs)

        return wrapper

    return decorator


def navigation_for(user: Any, *, path: str = "") -> list[dict[str, Any]]:
    """The navigation entries `user` may use; `current` marks the one `path` is under."""
    home = reverse("dashboard:overview")
    entries = []
    for item in NAVIGATION:
        if not may_use(user, item.view):
            continue
        url = reverse(f"dashboard:{item.view}")
        current = path == url or (url != home and path.startswith(url))
        entries.append({"url": url, "label": item.label, "current": current})
    return entries
