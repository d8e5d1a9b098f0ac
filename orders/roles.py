"""Staff roles: Django groups and the permissions each one holds.

The data migration 0003 creates them from this table; `create_staff` puts a
user in one. A superuser ("admin") has every permission.
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
ROLES = [*ROLE_PERMISSIONS, "admin"]
