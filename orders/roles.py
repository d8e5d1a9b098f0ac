"""Staff roles: Django groups and the permissions each one holds.

The data migration 0003 creates them from ROLE_PERMISSIONS; permissions of
models added later are granted by the migration that adds them and listed in
ROLE_PERMISSIONS_ADDED (0003 replays on a fresh database, before they exist).
`create_staff` puts a user in one. A superuser ("admin") has every permission.
Those data migrations grant through `role_grants_apply` / `role_grants_remove`.
"""

from __future__ import annotations

from typing import Any

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "support": [
        "orders.view_order",
        "orders.view_orderitem",
        "orders.view_statuschange",
        "orders.view_client",
        "orders.view_product",
        "orders.reveal_voucher",
        "orders.cancel_order",
        "orders.retry_order",
        "orders.resend_delivery",
    ],
    "finance": [
        "orders.view_order",
        "orders.view_orderitem",
        "orders.view_statuschange",
        "orders.view_client",
        "orders.view_product",
        "orders.view_wallet",
        "orders.view_walletentry",
        "orders.approve_refund",
        "orders.export_orders",
        "orders.view_reconciliation",
    ],
    "inventory": [
        "orders.view_product",
        "orders.add_product",
        "orders.change_product",
        "orders.view_vendor",
        "orders.add_vendor",
        "orders.change_vendor",
        "orders.view_voucher",
        "orders.import_vouchers",
        "orders.block_voucher",
        "orders.view_importbatch",
    ],
}
# Granted by 0007_vendor_adapter_registry: finance approves price changes
# (inventory proposes them); both see the queue. Granted by 0021_clients_workspace:
# finance onboards and manages API clients (the dashboard's clients workspace).
ROLE_PERMISSIONS_ADDED: dict[str, list[str]] = {
    "finance": [
        "orders.view_pricechange",
        "orders.approve_price_change",
        "orders.manage_clients",
    ],
    "inventory": ["orders.view_pricechange"],
}
ROLES = [*ROLE_PERMISSIONS, "admin"]


def role_permissions(role: str) -> list[str]:
    """Every permission a role holds once all migrations have run."""
    return [*ROLE_PERMISSIONS.get(role, []), *ROLE_PERMISSIONS_ADDED.get(role, [])]


def role_grants_apply(apps: Any, grants: dict[str, list[str]]) -> None:
    """For a data migration: give each role's group the permissions named ("app.codename"),
    after creating the permissions of every model migrated so far (Django makes them
    only after all migrations have run)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def role_grants_remove(apps: Any, grants: dict[str, list[str]]) -> None:
    """The reverse of `role_grants_apply` (the permissions themselves stay)."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, names in grants.items():
        group = Group.objects.filter(name=role).first()
        if group is None:
            continue
        for name in names:
            app_label, codename = name.split(".")
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
