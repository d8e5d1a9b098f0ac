"""Staff roles: Django groups and the permissions each one holds.

The data migration 0003 creates them from ROLE_PERMISSIONS; permissions of
models added later are granted by the migration that adds them and listed in
ROLE_PERMISSIONS_ADDED (0003 replays on a fresh database, before they exist).
`create_staff` puts a user in one. A superuser ("admin") has every permission.
"""

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
# (inventory proposes them); both see the queue.
ROLE_PERMISSIONS_ADDED: dict[str, list[str]] = {
    "finance": ["orders.view_pricechange", "orders.approve_price_change"],
    "inventory": ["orders.view_pricechange"],
}
ROLES = [*ROLE_PERMISSIONS, "admin"]


def role_permissions(role: str) -> list[str]:
    """Every permission a role holds once all migrations have run."""
    return [*ROLE_PERMISSIONS.get(role, []), *ROLE_PERMISSIONS_ADDED.get(role, [])]
