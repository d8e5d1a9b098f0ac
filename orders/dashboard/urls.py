"""Dashboard URLs; every name here has a row in permissions.PERMISSIONS."""

from django.urls import path

from orders.dashboard import clients, finance, inventory, overview, support

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
    path("clients/", clients.client_list, name="client_list"),
    path("clients/new/", clients.client_create_view, name="client_create"),
    path("clients/<int:client_id>/", clients.client_detail, name="client_detail"),
    path(
        "clients/<int:client_id>/wallets/",
        clients.client_wallet_open,
        name="client_wallet_open",
    ),
    path(
        "clients/<int:client_id>/credentials/",
        clients.client_credential_issue,
        name="client_credential_issue",
    ),
    path(
        "clients/<int:client_id>/credentials/<int:credential_id>/access/",
        clients.client_credential_access,
        name="client_credential_access",
    ),
    path(
        "clients/<int:client_id>/credentials/<int:credential_id>/rate-limit/",
        clients.client_credential_rate_limit,
        name="client_credential_rate_limit",
    ),
    path(
        "clients/<int:client_id>/credentials/<int:credential_id>/rotate/",
        clients.client_credential_rotate,
        name="client_credential_rotate",
    ),
    path(
        "clients/<int:client_id>/credentials/<int:credential_id>/revoke/",
        clients.client_credential_revoke,
        name="client_credential_revoke",
    ),
    path(
        "clients/<int:client_id>/webhooks/",
        clients.client_webhook_create,
        name="client_webhook_create",
    ),
    path(
        "clients/<int:client_id>/webhooks/<int:endpoint_id>/",
        clients.client_webhook_detail,
        name="client_webhook_detail",
    ),
    path(
        "clients/<int:client_id>/webhooks/<int:endpoint_id>/deactivate/",
        clients.client_webhook_deactivate,
        name="client_webhook_deactivate",
    ),
    path(
        "clients/<int:client_id>/webhooks/<int:endpoint_id>/rotate/",
        clients.client_webhook_rotate,
        name="client_webhook_rotate",
    ),
    path(
        "clients/<int:client_id>/webhooks/<int:endpoint_id>/test/",
        clients.client_webhook_test,
        name="client_webhook_test",
    ),
    path(
        "clients/<int:client_id>/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay/",
        clients.client_webhook_replay,
        name="client_webhook_replay",
    ),
]
