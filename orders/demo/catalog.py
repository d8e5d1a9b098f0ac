"""What the demo sells and to whom: clients, vendors, products and voucher stock.

Products are added with `product_create` and stock arrives as CSV files through
the inventory import service (validate, then commit), exactly as an inventory
admin adds them; a few codes are then blocked with `voucher_block`.
"""

from __future__ import annotations

import io
import random
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils.text import slugify

from orders.enums import Classification, DeliveryType, InventoryStatus, LinkType, ProductKind
from orders.models import ImportBatch, Product, Vendor, Voucher
from orders.rules import holds_stock
from orders.services.actors import Actor
from orders.services.catalog import product_create
from orders.services.import_file import CSV_COLUMNS
from orders.services.imports import voucher_import_commit, voucher_import_validate
from orders.services.inventory import voucher_block
from orders.vendors.registry import DEFAULT_ADAPTER

SLOW_ADAPTER = "simulated-slow"
# code -> (name, adapter key)
VENDORS = {
    DEFAULT_ADAPTER: ("Simulated vendor", DEFAULT_ADAPTER),
    SLOW_ADAPTER: ("Slow simulated vendor", SLOW_ADAPTER),
}
BLOCK_REASON = "Reported by the brand as already redeemed."
# Values a range product is ordered in.
RANGE_STEPS = ("10", "15", "20", "25", "40", "50", "75", "100", "150", "200", "250")

Pair = tuple[str, Decimal]  # (product name, denomination)


@dataclass(frozen=True)
class ClientSpec:
    name: str
    currency: str
    prefix: str
    email: str
    opening: str
    mid_month: str


CLIENTS = [
    ClientSpec("Acme Rewards", "USD", "ACME", "ops@acme-rewards.example", "20000.00", "10000.00"),
    ClientSpec("Blue Bank", "EUR", "BLUE", "loyalty@bluebank.example", "15000.00", "7500.00"),
    ClientSpec("Crown Perks", "GBP", "CRWN", "perks@crownperks.example", "12000.00", "6000.00"),
]


@dataclass(frozen=True)
class Stock:
    """Units of one denomination: `available` is what stays in stock after the
    demo's history; `expiring_soon` arrive in a recent batch; `blocked` are taken
    out of allocation by the inventory admin."""

    denomination: str
    available: int
    expiring_soon: int = 0
    blocked: int = 0


@dataclass(frozen=True)
class ProductSpec:
    name: str
    brand: str
    kind: ProductKind
    currency: str
    delivery_type: DeliveryType
    denominations: tuple[str, ...] = ()
    range: tuple[str, str] | None = None
    stock: tuple[Stock, ...] = ()
    discount_percent: str = "0"
    fee_fixed: str = "0.00"
    fee_percent: str = "0"
    description: str = ""
    vendor: str = DEFAULT_ADAPTER
    # A URL product's links: PROTECTED (opened with an e-mailed code), else PUBLIC.
    protected: bool = False

    @property
    def orderable(self) -> list[Decimal]:
        if self.range is None:
            return [Decimal(d) for d in self.denominations]
        low, high = Decimal(self.range[0]), Decimal(self.range[1])
        return [Decimal(v) for v in RANGE_STEPS if low <= Decimal(v) <= high]

    @property
    def is_slow(self) -> bool:
        return self.vendor == SLOW_ADAPTER

    def stocked(self, denomination: Decimal) -> bool:
        return any(Decimal(s.denomination) == denomination for s in self.stock)


GC, TOPUP, DIGITAL = ProductKind.GIFT_CARD, ProductKind.MOBILE_TOPUP, ProductKind.DIGITAL_SERVICE
PIN, URL = DeliveryType.CODE_WITH_PIN, DeliveryType.URL
# Some denominations have inventory (a few expiring within 30 days, a few
# blocked, one low), the rest are bought from the vendor when ordered. The
# slow vendor's products hold the open orders agents practise on.
# fmt: off
PRODUCTS = [
    ProductSpec("Amazon.com Gift Card", "Amazon.com", GC, "USD", PIN,
                denominations=("10.00", "25.00", "50.00", "100.00"),
                stock=(Stock("10.00", 25, expiring_soon=2), Stock("25.00", 30, blocked=1),
                       Stock("50.00", 20)),
                discount_percent="2.000",
                description="Redeemable on Amazon.com for millions of items."),
    ProductSpec("Steam Wallet Code", "Steam", GC, "USD", PIN,
                denominations=("20.00", "50.00", "100.00"),
                stock=(Stock("20.00", 6), Stock("50.00", 15, blocked=1)),
                description="Adds funds to a Steam Wallet for games, software and hardware."),
    ProductSpec("Apple Gift Card", "Apple", GC, "USD", PIN,
                range=("10.00", "500.00"),
                stock=(Stock("25.00", 15, expiring_soon=1), Stock("50.00", 12)),
                description="For apps, games, music, iCloud and products at Apple."),
    ProductSpec("AT&T Prepaid Refill", "AT&T", TOPUP, "USD", PIN,
                denominations=("15.00", "25.00", "50.00"),
                fee_fixed="0.50",
                description="Direct refill of an AT&T Prepaid line."),
    ProductSpec("Netflix Gift Card", "Netflix", DIGITAL, "USD", URL,
                denominations=("15.00", "30.00", "60.00"),
                stock=(Stock("30.00", 12, expiring_soon=2),),
                description="Netflix membership credit, delivered as a redemption link."),
    ProductSpec("Xbox Game Pass Ultimate", "Xbox", DIGITAL, "USD", PIN,
                denominations=("19.99", "59.99"),
                description="1 or 3 months of Xbox Game Pass Ultimate."),
    ProductSpec("PlayStation Store Gift Card", "PlayStation", GC, "USD", PIN,
                denominations=("10.00", "25.00", "50.00", "100.00"), vendor=SLOW_ADAPTER,
                description="Games and add-ons on PlayStation Store; from a slow supplier."),
    ProductSpec("Zalando Gift Card", "Zalando", GC, "EUR", PIN,
                denominations=("25.00", "50.00", "100.00"),
                stock=(Stock("25.00", 20, expiring_soon=1), Stock("50.00", 10)),
                discount_percent="1.500",
                description="Fashion and shoes on Zalando."),
    ProductSpec("IKEA Gift Card", "IKEA", GC, "EUR", PIN,
                range=("10.00", "300.00"),
                description="Valid in IKEA stores and online."),
    ProductSpec("Vodafone Top-up", "Vodafone", TOPUP, "EUR", PIN,
                denominations=("10.00", "15.00", "20.00", "30.00"),
                fee_percent="1.000",
                description="Prepaid credit for Vodafone mobile numbers."),
    ProductSpec("Spotify Premium", "Spotify", DIGITAL, "EUR", URL,
                denominations=("10.00", "30.00", "60.00"),
                stock=(Stock("10.00", 15), Stock("30.00", 8, expiring_soon=1)),
                description="Spotify Premium subscription time, delivered as a link."),
    ProductSpec("Google Play Gift Card", "Google Play", GC, "EUR", PIN,
                denominations=("15.00", "25.00", "50.00"), vendor=SLOW_ADAPTER,
                description="Apps, games and films on Google Play; from a slow supplier."),
    ProductSpec("Marks & Spencer Gift Card", "Marks & Spencer", GC, "GBP", PIN,
                denominations=("10.00", "25.00", "50.00"),
                stock=(Stock("10.00", 15, expiring_soon=1), Stock("25.00", 18)),
                description="Food, clothing and home at M&S."),
    ProductSpec("Uber Eats Gift Card", "Uber Eats", GC, "GBP", URL,
                range=("15.00", "200.00"),
                description="Credit for Uber Eats orders, delivered as a link."),
    ProductSpec("EE Mobile Top-up", "EE", TOPUP, "GBP", PIN,
                range=("5.00", "50.00"),
                description="Pay-as-you-go credit for EE numbers."),
    ProductSpec("Disney+ Gift Subscription", "Disney+", DIGITAL, "GBP", URL,
                denominations=("7.99", "79.90"),
                stock=(Stock("7.99", 10),), protected=True,
                description="Monthly or annual Disney+ subscription, delivered as a link "
                            "opened with a code e-mailed to the customer."),
    ProductSpec("Deliveroo Gift Card", "Deliveroo", GC, "GBP", URL,
                denominations=("10.00", "25.00", "50.00"), vendor=SLOW_ADAPTER,
                description="Meals on Deliveroo, delivered as a link; from a slow supplier."),
]
# fmt: on
SPECS = {spec.name: spec for spec in PRODUCTS}


def vendors_ensure() -> dict[str, Vendor]:
    """The demo's vendors by code: the simulated one and the slow one."""
    vendors = {}
    for code, (name, adapter) in VENDORS.items():
        vendors[code], _ = Vendor.objects.get_or_create(
            code=code, defaults={"name": name, "adapter": adapter, "is_active": True}
        )
    return vendors


def catalog_ensure(*, vendors: dict[str, Vendor], actor: Actor) -> dict[str, Product]:
    """Every demo product by name, created through the catalog service when missing."""
    products: dict[str, Product] = {}
    for spec in PRODUCTS:
        product = Product.objects.filter(name=spec.name).first()
        if product is None:
            product = product_create(values=_product_values(spec, vendors), actor=actor).product
        products[spec.name] = product
    return products


def _link_type(spec: ProductSpec) -> str:
    if spec.delivery_type != URL:
        return ""
    return LinkType.PROTECTED if spec.protected else LinkType.PUBLIC


def _product_values(spec: ProductSpec, vendors: dict[str, Vendor]) -> dict[str, Any]:
    return {
        "vendor": vendors[spec.vendor],
        "name": spec.name,
        "brand": spec.brand,
        "kind": spec.kind,
        "currency": spec.currency,
        "denominations": list(spec.denominations),
        "min_denomination": Decimal(spec.range[0]) if spec.range else None,
        "max_denomination": Decimal(spec.range[1]) if spec.range else None,
        "delivery_type": spec.delivery_type,
        "classification": (
            Classification.CLOSED_LOOP if spec.kind == GC else Classification.OPEN_LOOP
        ),
        "link_type": _link_type(spec),
        "bulk_limit": 5 if spec.kind == TOPUP else 10,
        "discount_percent": Decimal(spec.discount_percent),
        "fee_fixed": Decimal(spec.fee_fixed),
        "fee_percent": Decimal(spec.fee_percent),
        "description": spec.description,
    }


# --- Stock --------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One CSV file of codes for one product: denomination -> (units, days to expiry)."""

    product: Product
    spec: ProductSpec
    file_name: str
    units: dict[Decimal, int]
    expiry_days: tuple[int, int]


def stock_imports(
    *, products: dict[str, Product], consumed: Counter[Pair], recent: bool
) -> Iterator[Import]:
    """The demo's voucher files: the main stock imported before the history began
    (what the history delivers plus what stays, blocked units included), or the
    recent file of codes that expire within weeks."""
    for spec in PRODUCTS:
        if not holds_stock(spec.kind) or not spec.stock:
            continue
        units: dict[Decimal, int] = {}
        for stock in spec.stock:
            denomination = Decimal(stock.denomination)
            if recent:
                units[denomination] = stock.expiring_soon
            else:
                units[denomination] = (
                    stock.available + stock.blocked + consumed[(spec.name, denomination)]
                )
        units = {value: count for value, count in units.items() if count > 0}
        if units:
            suffix = "-recent" if recent else ""
            yield Import(
                product=products[spec.name],
                spec=spec,
                file_name=f"demo-{slugify(spec.brand)}{suffix}.csv",
                units=units,
                expiry_days=(3, 28) if recent else (120, 720),
            )


def stock_import(
    item: Import, *, actor: Actor, rng: random.Random, now: datetime
) -> ImportBatch | None:
    """Validate and commit one file through the import service, once per file name;
    then block the spec's `blocked` units. None when it was imported before."""
    if ImportBatch.objects.filter(product=item.product, file_name=item.file_name).exists():
        return None
    text = _csv_text(item, rng=rng, now=now)
    preview = voucher_import_validate(
        product_id=item.product.pk,
        stream=io.StringIO(text),
        file_name=item.file_name,
        actor=actor,
    )
    batch = voucher_import_commit(batch_id=preview.batch_id, stream=io.StringIO(text), actor=actor)
    if not item.file_name.endswith("-recent.csv"):
        for stock in item.spec.stock:
            _block(batch, Decimal(stock.denomination), stock.blocked, actor=actor)
    return batch


def _block(batch: ImportBatch, denomination: Decimal, count: int, *, actor: Actor) -> None:
    if count <= 0:
        return
    # The longest-lived units: fulfilment hands out the earliest expiry first.
    doomed = Voucher.objects.filter(
        batch=batch, denomination=denomination, status=InventoryStatus.AVAILABLE
    ).order_by("-expires_at", "-id")[:count]
    for voucher_id in doomed.values_list("pk", flat=True):
        voucher_block(voucher_id=voucher_id, actor=actor, reason=BLOCK_REASON)


def _csv_text(item: Import, *, rng: random.Random, now: datetime) -> str:
    """A file as a vendor sends it: fake codes, one row per unit."""
    rows = [",".join(CSV_COLUMNS)]
    brand = slugify(item.spec.brand)
    low, high = item.expiry_days
    for denomination, count in item.units.items():
        for _ in range(count):
            expires = (now + timedelta(days=rng.randint(low, high))).date().isoformat()
            reference = f"REF-{rng.randint(10**7, 10**8 - 1)}" if rng.random() < 0.5 else ""
            if item.spec.delivery_type == PIN:
                code = "".join(rng.choices(string.digits, k=16))
                pin, claim_url = "".join(rng.choices(string.digits, k=4)), ""
            else:
                code = "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
                token = "".join(rng.choices(string.ascii_letters + string.digits, k=24))
                pin, claim_url = "", f"https://redeem.{brand}.example/claim/{token}"
            values = {
                "card_number": code,
                "pin_code": pin,
                "voucher_reference_number": reference,
                "claim_url": claim_url,
                "expires_at": expires,
                "denomination": str(denomination),
            }
            rows.append(",".join(values[column] for column in CSV_COLUMNS))
    return "\n".join(rows) + "\n"
