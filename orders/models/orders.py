"""Orders, their per-unit items and their timeline."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders import rules
from orders.enums import (
    DeliveryMethod,
    DeliveryType,
    ItemStatus,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    RechargeStatus,
    RefundStatus,
    SubStatus,
)


class Order(models.Model):
    """A client's purchase of `quantity` units of one product and denomination.

    `reference_code` is the client's idempotency key. `transaction` is the
    wallet debit that paid for it. Status changes only through
    `orders.services.transitions.order_transition`.
    """

    client = models.ForeignKey("orders.Client", on_delete=models.PROTECT, related_name="orders")
    credential = models.ForeignKey(
        "orders.ApiCredential", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    product = models.ForeignKey("orders.Product", on_delete=models.PROTECT, related_name="orders")
    reference_code = models.CharField(max_length=100)
    request_hash = models.CharField(
        max_length=64, blank=True, help_text="Hash of the create request, to detect a replay."
    )
    transaction = models.OneToOneField(
        "orders.WalletEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Snapshot of the product at order time.
    product_name = models.CharField(max_length=200)
    product_brand = models.CharField(max_length=100)
    product_kind = models.CharField(max_length=16, choices=ProductKind.choices)
    delivery_type = models.CharField(max_length=16, choices=DeliveryType.choices)
    # CODE: the partner reads the codes; LINK: one gift link per unit (GiftLink),
    # only its recipient sees the code.
    delivery_method = models.CharField(
        max_length=8, choices=DeliveryMethod.choices, default=DeliveryMethod.CODE
    )
    # Money: amount = face_value - discount + fees + taxes, charged to the wallet.
    currency = models.CharField(max_length=3)
    denomination = models.DecimalField(max_digits=14, decimal_places=2)
    quantity = models.PositiveIntegerField()
    face_value = models.DecimalField(max_digits=14, decimal_places=2)
    discount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    fees = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    taxes = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    # The wallet that paid; when its currency differs from the product's, the
    # rate used and the amount taken from it in its own currency.
    wallet = models.ForeignKey(
        "orders.Wallet", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    wallet_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("1"))
    wallet_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    payment_method = models.CharField(
        max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.WALLET
    )
    # Lifecycle.
    status = models.CharField(
        max_length=24, choices=OrderStatus.choices, default=OrderStatus.PLACED
    )
    sub_status = models.CharField(
        max_length=32, choices=SubStatus.choices, default=SubStatus.INITIAL
    )
    failure_reason = models.CharField(max_length=500, blank=True)
    # Customer the vouchers are for.
    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField(blank=True)
    customer_phone = models.CharField(max_length=32, blank=True)
    recipient_phone = models.CharField(max_length=32, blank=True)
    # Timestamps.
    placed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Retry bookkeeping (fulfilment): when the next scheduled retry is due, and
    # until when a running attempt holds the order (its lease, see rules).
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    retry_deadline = models.DateTimeField(null=True, blank=True)
    vendor_order_ref = models.CharField(max_length=100, blank=True)
    # Refund state of the undelivered value.
    refund_status = models.CharField(
        max_length=16, choices=RefundStatus.choices, default=RefundStatus.NONE
    )
    refund_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_entry = models.OneToOneField(
        "orders.WalletEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-placed_at", "-id"]
        permissions = [
            ("reveal_voucher", "Can reveal voucher secrets"),
            ("cancel_order", "Can cancel an order"),
            ("retry_order", "Can retry fulfilment"),
            ("resend_delivery", "Can resend the delivery e-mail"),
            ("approve_refund", "Can approve, hold or reject refunds"),
            ("export_orders", "Can export orders as CSV"),
            ("view_reconciliation", "Can view the reconciliation report"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "reference_code"], name="order_reference_unique_per_client"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
        ]
        indexes = [
            # Keyset pagination (newest first) and the filters of the dashboard.
            models.Index(fields=["placed_at", "id"], name="order_placed_keyset"),
            models.Index(fields=["status", "placed_at", "id"], name="order_status_keyset"),
            models.Index(fields=["client", "placed_at", "id"], name="order_client_keyset"),
            models.Index(fields=["product", "placed_at", "id"], name="order_product_keyset"),
            models.Index(fields=["sub_status", "placed_at", "id"], name="order_substatus_keyset"),
            models.Index(fields=["customer_email"], name="order_customer_email"),
            models.Index(fields=["customer_phone"], name="order_customer_phone"),
            models.Index(fields=["reference_code"], name="order_reference_code"),
            # The refund queue and the refund backlog (selectors.finance.refunds_owed):
            # its condition is theirs exactly, so their pages read it in order and
            # their totals are an index-only scan of the refunds owed, whatever the
            # number of refunded or failed orders. The summed columns are key
            # columns rather than INCLUDE, which SQLite does not have.
            models.Index(
                fields=["placed_at", "id", "wallet_currency", "refund_amount"],
                name="order_refund_queue",
                condition=Q(
                    refund_status="NOT_REFUNDED",
                    status__in=rules.status_values(rules.REFUNDABLE_STATUSES),
                ),
            ),
            # The recovery sweep: retries overdue and leases run out, open orders only.
            models.Index(
                fields=["next_attempt_at"],
                name="order_open_due",
                condition=Q(status__in=["PLACED", "PENDING"]),
            ),
            models.Index(
                fields=["leased_until"],
                name="order_open_lease",
                condition=Q(status__in=["PLACED", "PENDING"]),
            ),
            # The rollups' refresh: orders changed since its last run.
            models.Index(fields=["updated_at"], name="order_updated"),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.reference_code})"

    @property
    def is_terminal(self) -> bool:
        return rules.is_terminal(self.status)


class OrderItem(models.Model):
    """One unit of an order: its status and the voucher (or recharge) it got."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    voucher = models.OneToOneField(
        "orders.Voucher", null=True, blank=True, on_delete=models.PROTECT, related_name="order_item"
    )
    recharge_status = models.CharField(
        max_length=16, choices=RechargeStatus.choices, blank=True, default=""
    )
    vendor_ref = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="orderitem_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.position}"


class StatusChange(models.Model):
    """One step of an order's timeline, written by order_transition only."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=24, blank=True)
    from_sub_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=24, choices=OrderStatus.choices)
    to_sub_status = models.CharField(max_length=32, choices=SubStatus.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order_id", "created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="statuschange_timeline")]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status} -> {self.to_status}/{self.to_sub_status}"


class RefundReview(models.Model):
    """A finance decision on an order's refund: approve, hold or reject.

    Refunds above REFUND_SECOND_APPROVAL_LIMIT need approvals from two
    different users before money moves (maker-checker); the latest hold or
    reject takes the order out of the queue until someone approves.
    """

    class Decision(models.TextChoices):
        APPROVE = "APPROVE", "Approve"
        HOLD = "HOLD", "Hold"
        REJECT = "REJECT", "Reject"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refund_reviews")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order_id", "created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="refundreview_order")]

    def __str__(self) -> str:
        return f"{self.decision} of order {self.order_id} by {self.user_id}"
