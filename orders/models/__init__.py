"""Domain models, one module per aggregate."""

from orders.models.audit import AuditChainHead, AuditEvent
from orders.models.catalog import Product, Vendor
from orders.models.clients import (
    ApiCredential,
    Client,
    Wallet,
    WalletCreditRequest,
    WalletEntry,
)
from orders.models.inventory import ImportBatch, Voucher
from orders.models.orders import Order, OrderItem, RefundReview, StatusChange
from orders.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiCredential",
    "AuditChainHead",
    "AuditEvent",
    "Client",
    "ImportBatch",
    "Order",
    "OrderItem",
    "Product",
    "RefundReview",
    "StatusChange",
    "Vendor",
    "Voucher",
    "Wallet",
    "WalletCreditRequest",
    "WalletEntry",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
