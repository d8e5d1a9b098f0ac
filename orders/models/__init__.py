"""Domain models, one module per aggregate."""

from orders.models.audit import AuditChainHead, AuditEvent
from orders.models.catalog import PriceChange, Product, Vendor
from orders.models.clients import (
    ApiCredential,
    ApiErrorRecord,
    Client,
    Wallet,
    WalletCreditRequest,
    WalletEntry,
)
from orders.models.inventory import ImportBatch, ImportUpload, ImportUploadChunk, Voucher
from orders.models.links import GiftLink
from orders.models.notifications import DeliveryEmail
from orders.models.operations import WorkerHeartbeat
from orders.models.orders import Order, OrderItem, RefundReview, StatusChange
from orders.models.rollups import (
    LedgerDayRollup,
    OrderHourRollup,
    OrderProductDayRollup,
    OrderStatusHourRollup,
    ReconDayRollup,
    RollupState,
    VoucherRollup,
    VoucherSoldDayRollup,
    WalletBalanceRollup,
)
from orders.models.staff import SealedTOTPDevice
from orders.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiCredential",
    "ApiErrorRecord",
    "AuditChainHead",
    "AuditEvent",
    "Client",
    "DeliveryEmail",
    "GiftLink",
    "ImportBatch",
    "ImportUpload",
    "ImportUploadChunk",
    "LedgerDayRollup",
    "Order",
    "OrderHourRollup",
    "OrderItem",
    "OrderProductDayRollup",
    "OrderStatusHourRollup",
    "PriceChange",
    "Product",
    "ReconDayRollup",
    "RefundReview",
    "RollupState",
    "SealedTOTPDevice",
    "StatusChange",
    "Vendor",
    "Voucher",
    "VoucherRollup",
    "VoucherSoldDayRollup",
    "Wallet",
    "WalletBalanceRollup",
    "WalletCreditRequest",
    "WalletEntry",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
]
