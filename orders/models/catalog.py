"""What can be bought: vendors and their products."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from orders.enums import Classification, DeliveryType, LinkType, ProductKind


class Vendor(models.Model):
    """A supplier the fulfilment engine buys from when inventory runs out."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    adapter = models.CharField(
        max_length=200,
        default="orders.vendors.simulated.SimulatedVendor",
        help_text="Dotted path of the vendor adapter class.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
    link_type = models.CharField(max_length=16, choices=LinkType.choices, blank=True)
    bulk_limit = models.PositiveIntegerField(default=10)
    discount_percent = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"))
    fee_fixed = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    fee_percent = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"))
    tax_percent = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("0"))
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
                condition=Q(min_denomination__isnull=True)
                | Q(max_denomination__isnull=True)
                | Q(min_denomination__lte=models.F("max_denomination")),
                name="product_denomination_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def denomination_list(self) -> list[Decimal]:
        return sorted(Decimal(str(value)) for value in self.denominations or [])

    @property
    def is_range(self) -> bool:
        return self.min_denomination is not None and self.max_denomination is not None
