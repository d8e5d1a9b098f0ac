"""Dashboard URLs; every name here has a row in permissions.PERMISSIONS."""

from django.urls import path

from orders.dashboard import finance, inventory, overview, support

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("orders/", support.order_list, name="order_list"),
    path("orders/<int:order_id>/", support.order_detail, name="order_detail"),
    path("orders/<int:order_id>/row/", support.order_row, name="order_row"),
    path("orders/<int:order_id>/cancel/", support.order_cancel, name="order_cancel"),
    path("orders/<int:order_id>/retry/", support.order_retry, name="order_retry"),
    path("orders/<int:order_id>/resend/", support.order_resend, name="order_resend"),
    path("vouchers/<int:voucher_id>/masked/", support.voucher_masked, name="voucher_masked"),
    path("vouchers/<int:voucher_id>/reveal/", support.voucher_reveal, name="voucher_reveal"),
    path("audit/", overview.audit_log, name="audit_log"),
    path("inventory/", inventory.inventory_stock, name="inventory_stock"),
    path("inventory/import/", inventory.inventory_import, name="inventory_import"),
    path(
        "inventory/import/<int:batch_id>/",
        inventory.inventory_import_preview,
        name="inventory_import_preview",
    ),
    path(
        "inventory/import/<int:batch_id>/commit/",
        inventory.inventory_import_commit,
        name="inventory_import_commit",
    ),
    path("inventory/vouchers/", inventory.inventory_vouchers, name="inventory_vouchers"),
    path(
        "inventory/vouchers/<int:voucher_id>/<slug:action>/",
        inventory.inventory_voucher_action,
        name="inventory_voucher_action",
    ),
    path("inventory/batches/", inventory.inventory_batches, name="inventory_batches"),
    path(
        "inventory/batches/<int:batch_id>/<slug:action>/",
        inventory.inventory_batch_action,
        name="inventory_batch_action",
    ),
    path("finance/refunds/", finance.refund_queue, name="refund_queue"),
    path("finance/refunds/decide/", finance.refund_decide, name="refund_decide"),
    path("finance/wallets/", finance.wallet_list, name="wallet_list"),
    path("finance/wallets/<int:wallet_id>/", finance.wallet_detail, name="wallet_detail"),
    path(
        "finance/wallets/<int:wallet_id>/top-up/",
        finance.wallet_top_up_view,
        name="wallet_top_up",
    ),
    path(
        "finance/wallets/<int:wallet_id>/adjust/",
        finance.wallet_adjust_view,
        name="wallet_adjust",
    ),
    path("finance/credits/", finance.credit_queue, name="credit_queue"),
    path(
        "finance/credits/<int:request_id>/decide/",
        finance.credit_decide,
        name="credit_decide",
    ),
    path("finance/reconciliation/", finance.reconciliation, name="reconciliation"),
    path("finance/export/orders.csv", finance.export_orders, name="export_orders"),
    path("finance/export/refunds.csv", finance.export_refunds, name="export_refunds"),
    path(
        "finance/wallets/<int:wallet_id>/ledger.csv",
        finance.export_ledger,
        name="export_ledger",
    ),
]
