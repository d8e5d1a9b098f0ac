"""Rollups: figures of the dashboard pages, materialised from the raw rows.

The worker rebuilds them (`orders.services.rollups.rollups_refresh`): each run
recomputes, from the raw rows, only the buckets whose rows changed since the
previous run, so a page reads a few hundred rollup rows instead of scanning
every order. Nothing on the order path writes here. `manage.py check_rollups`
recomputes every bucket from the raw rows and reports each difference.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models


def _money() -> models.DecimalField:
    return models.DecimalField(max_digits=20, decimal_places=2, default=Decimal("0.00"))


# VoucherRollup.status of AVAILABLE units past their expiry.
EXPIRED_BUCKET = "EXPIRED"


class RollupState(models.Model):
    """How far the rollups are built: one row (`name="rollups"`).

    `watermark` is when the last refresh started; the next one recomputes the
    buckets of rows changed since then (minus a safety margin for transactions
    that committed late). `refreshed_at` is the "as of" time the pages show.
    """

    name = models.CharField(max_length=32, unique=True)
    watermark = models.DateTimeField()
    refreshed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} as of {self.refreshed_at:%Y-%m-%d %H:%M:%S}"


class OrderHourRollup(models.Model):
    """Orders placed in one UTC hour, by status and product (the overview)."""

    hour = models.DateTimeField()
    status = models.CharField(max_length=24)
    product_id = models.BigIntegerField()
    product_name = models.CharField(max_length=200)
    orders = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "status", "product_id", "product_name"],
                name="orderhourrollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.status} {self.product_name}: {self.orders}"


class OrderStatusHourRollup(models.Model):
    """`OrderHourRollup` summed over products: the overview's hourly chart."""

    hour = models.DateTimeField()
    status = models.CharField(max_length=24)
    orders = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "status"], name="orderstatushourrollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.status}: {self.orders}"


class OrderProductDayRollup(models.Model):
    """`OrderHourRollup` summed over the hours of a UTC day: deliveries by product
    over whole days."""

    day = models.DateField()
    status = models.CharField(max_length=24)
    product_id = models.BigIntegerField()
    product_name = models.CharField(max_length=200)
    orders = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "status", "product_id", "product_name"],
                name="orderproductdayrollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.status} {self.product_name}: {self.orders}"


class VoucherRollup(models.Model):
    """Vouchers of one product and denomination by status. AVAILABLE counts the
    units allocatable when the bucket was computed (`next_expiry`: the earliest
    of their expiries); `EXPIRED_BUCKET` the AVAILABLE units already expired then
    (the expiry sweep, which runs before each refresh, blocks them)."""

    product_id = models.BigIntegerField()
    denomination = models.DecimalField(max_digits=14, decimal_places=2)
    status = models.CharField(max_length=16)
    units = models.PositiveIntegerField()
    next_expiry = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product_id", "denomination", "status"], name="voucherrollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.denomination} {self.status}: {self.units}"


class VoucherSoldDayRollup(models.Model):
    """Vouchers of one product and denomination delivered on one UTC day."""

    product_id = models.BigIntegerField()
    denomination = models.DecimalField(max_digits=14, decimal_places=2)
    day = models.DateField()
    units = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "product_id", "denomination"], name="vouchersolddayrollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.product_id} {self.denomination}: {self.units}"


class LedgerDayRollup(models.Model):
    """A wallet's ledger entries created on one UTC day, summed by kind."""

    day = models.DateField()
    wallet_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    debits = _money()
    refunds = _money()
    top_ups = _money()
    adjustments = _money()
    total = _money()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "wallet_id"], name="ledgerdayrollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} wallet {self.wallet_id}: {self.total}"


class ReconDayRollup(models.Model):
    """The reconciliation check of the orders debited on one UTC day in one wallet
    currency (see `orders.selectors.reconciliation.ReconRow`)."""

    day = models.DateField()
    currency = models.CharField(max_length=3)
    terminal_debits = _money()
    terminal_refunds = _money()
    delivered_value = _money()
    awaiting_refund = models.PositiveIntegerField(default=0)
    open_orders = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "currency"], name="recondayrollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency}"


class WalletBalanceRollup(models.Model):
    """Every wallet's balance in the same snapshot as the ledger rollups, so the
    ledger check compares figures of one moment."""

    wallet_id = models.BigIntegerField(unique=True)
    balance = _money()

    def __str__(self) -> str:
        return f"wallet {self.wallet_id}: {self.balance}"
