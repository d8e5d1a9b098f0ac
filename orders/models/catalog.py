"""What can be bought: vendors and their products."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders.enums import Classification, DeliveryType, LinkType, ProductKind
from orders.rules import MAX_BULK_LIMIT, in_cents
from orders.vendors.registry import DEFAULT_ADAPTER, adapter_choices

PERCENT = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class Vendor(models.Model):
    """A supplier the fulfilment engine buys from when inventory runs out."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    adapter = models.CharField(
        max_length=200,
        choices=adapter_choices,
        default=DEFAULT_ADAPTER,
        help_text="A registered vendor adapter (adapters are added in code or settings only).",
        error_messages={"invalid_choice": "%(value)r is not a registered vendor adapter."},
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def denomination_values(stored: list[Any] | None) -> list[Decimal]:
    """A product's listed denominations as stored (JSON numbers or strings), as
    sorted Decimals: `Product.denomination_list` of a row read without a model."""
    return sorted(Decimal(str(value)) for value in stored or [])


class Product(models.Model):
    """A purchasable item: face values, delivery format and pricing rules.

    Denominations are either a fixed list (`denominations`) or a range
    (`min_denomination`..`max_denomination`).
    """

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    brand = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ProductKind.choices)
    currency = models.CharField(max_length=3)
    denominations = models.JSONField(
        default=list,
        blank=True,
        help_text='Allowed face values as strings, e.g. ["10.00", "25.00"].',
    )
    min_denomination = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    max_denomination = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    delivery_type = models.CharField(max_length=16, choices=DeliveryType.choices)
    classification = models.CharField(
        max_length=16, choices=Classification.choices, default=Classification.CLOSED_LOOP
    )
    link_type = models.CharField(
        max_length=16,
        choices=LinkType.choices,
        blank=True,
        help_text="Gift links of this product: PUBLIC (anyone with the link) or PROTECTED "
        "(a one-time code by e-mail first); empty means PUBLIC.",
    )
    gift_link_expiry_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="Days a gift link of this product stays claimable; empty: GIFT_LINK_EXPIRY_DAYS.",
    )
    bulk_limit = models.PositiveIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_BULK_LIMIT)],
        help_text=f"The most units one order may hold: 1 to {MAX_BULK_LIMIT:,}.",
    )
    discount_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("0"), validators=PERCENT
    )
    fee_fixed = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    fee_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("0"), validators=PERCENT
    )
    tax_percent = models.DecimalField(
        max_digits=6, decimal_places=3, default=Decimal("0"), validators=PERCENT
    )
    low_stock_threshold = models.PositiveIntegerField(default=10)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["is_active", "kind"], name="product_active_kind")]
        constraints = [
            models.CheckConstraint(
                condition=Q(bulk_limit__gte=1), name="product_bulk_limit_positive"
            ),
            models.CheckConstraint(
                condition=Q(bulk_limit__lte=MAX_BULK_LIMIT),
                name="product_bulk_limit_at_most_max",
                violation_error_message=f"The bulk limit is at most {MAX_BULK_LIMIT:,} units.",
            ),
            models.CheckConstraint(
                condition=Q(min_denomination__isnull=True)
                | Q(max_denomination__isnull=True)
                | Q(min_denomination__lte=models.F("max_denomination")),
                name="product_denomination_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        values = self.denominations
        if not isinstance(values, list):
            raise ValidationError({"denominations": 'A list of amounts, e.g. ["10.00", "25.00"].'})
        for value in values:
            try:
                amount = Decimal(str(value))
            except ArithmeticError:
                amount = Decimal("NaN")
            if not amount.is_finite() or amount <= 0 or not in_cents(amount):
                raise ValidationError(
                    {"denominations": f"{str(value)[:20]!r} is not a positive amount in cents."}
                )
        if (self.min_denomination is None) != (self.max_denomination is None):
            raise ValidationError("Give both a minimum and a maximum denomination, or neither.")

    @property
    def denomination_list(self) -> list[Decimal]:
        return denomination_values(self.denominations)

    @property
    def is_range(self) -> bool:
        return self.min_denomination is not None and self.max_denomination is not None


class PriceChange(models.Model):
    """A change of a product's price-relevant fields, with before/after values.

    Small changes are APPLIED at once; larger ones (see services/catalog.py) stay
    PENDING until a different user with orders.approve_price_change approves them.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending approval"
        APPLIED = "APPLIED", "Applied (under the approval limits)"
        APPROVED = "APPROVED", "Approved and applied"
        REJECTED = "REJECTED", "Rejected"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="price_changes")
    # {"discount_percent": {"before": "0.000", "after": "99.990"}, ...}
    changes = models.JSONField()
    # Why a second approver is needed (empty for APPLIED).
    approval_reasons = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_label = models.CharField(max_length=150)
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("approve_price_change", "Can approve or reject price changes")]
        indexes = [
            models.Index(fields=["product", "requested_at"], name="pricechange_product"),
            models.Index(
                fields=["requested_at"],
                name="pricechange_pending",
                condition=Q(status="PENDING"),
            ),
        ]

    def __str__(self) -> str:
        return f"Price change {self.pk} of {self.product_id} ({self.status})"
