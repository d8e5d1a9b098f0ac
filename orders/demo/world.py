"""The demo world, made once: the order in which the demo's parts are written.

Idempotent: staff, vendors, products, clients, import files and orders are
looked up before they are made, so a second run changes nothing, except that
it places a fresh handful of open orders for a client once none of its demo
orders on the slow vendor is open any more (they expire, or were cancelled).
One transaction: a failed run leaves nothing half-made behind.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders.demo.backdate import Backdates
from orders.demo.catalog import (
    CLIENTS,
    SLOW_ADAPTER,
    Pair,
    catalog_ensure,
    stock_import,
    stock_imports,
    vendors_ensure,
)
from orders.demo.people import (
    DemoClient,
    Staff,
    client_ensure,
    mid_month_top_up,
    mid_month_top_up_done,
    staff_ensure,
    wallet_refill,
)
from orders.demo.plan import DAYS, PlannedOrder, closed_plan, open_plan, stock_consumed
from orders.demo.play import order_place, order_play
from orders.enums import InventoryStatus
from orders.errors import InsufficientFunds
from orders.models import Order, Product, Voucher
from orders.rules import OPEN_STATUSES, status_values
from orders.services.audit import audit_seal
from orders.services.rollups import rollups_refresh

MAIN_STOCK_AGE = timedelta(days=DAYS + 5)
RECENT_STOCK_AGE = timedelta(days=3)


@dataclass
class DemoReport:
    """What the run did, for the command to print."""

    lines: list[str] = field(default_factory=list)
    created_orders: int = 0
    demo_orders: int = 0
    open_orders: int = 0
    vendors: list[str] = field(default_factory=list)
    products: int = 0
    vouchers_in_stock: int = 0


def demo_world_ensure(*, seed: int) -> DemoReport:
    """Create (once) the demo world; return what to tell the operator."""
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    report = DemoReport()
    backdates = Backdates(now=now, seed=seed)
    with transaction.atomic():
        staff = staff_ensure(lines=report.lines)
        vendors = vendors_ensure()
        products = catalog_ensure(vendors=vendors, actor=staff.admin)
        opened_at = start - timedelta(days=1)
        clients = [
            client_ensure(
                spec, staff=staff, opened_at=opened_at, backdates=backdates, lines=report.lines
            )
            for spec in CLIENTS
        ]
        plans = {
            demo.spec.prefix: closed_plan(demo.spec, seed=seed, start=start, now=now)
            for demo in clients
        }
        consumed: Counter[Pair] = Counter()
        for planned in plans.values():
            consumed += stock_consumed(planned)
        stock = _Stock(products=products, staff=staff, backdates=backdates, seed=seed, now=now)
        stock.imported(consumed=consumed, recent=False)
        for demo in clients:
            history = plans[demo.spec.prefix]
            report.created_orders += _history(
                demo, history, products, staff=staff, backdates=backdates, start=start
            )
        # Codes that expire within weeks arrived after the history's orders.
        stock.imported(consumed=consumed, recent=True)
        for demo in clients:
            report.created_orders += _open_orders(
                demo, products, staff=staff, backdates=backdates, seed=seed, now=now
            )
        backdates.apply()
    # Back-dating moved rows between buckets without touching `updated_at`.
    rollups_refresh(full=True)
    while audit_seal():  # sealed now, so check_audit_chain passes right after seeding
        pass
    _count(report, clients)
    report.vendors = sorted(vendors)
    return report


@dataclass
class _Stock:
    """The demo's voucher files, imported by the inventory admin, each once."""

    products: dict[str, Product]
    staff: Staff
    backdates: Backdates
    seed: int
    now: datetime

    def imported(self, *, consumed: Counter[Pair], recent: bool) -> None:
        codes = random.Random(f"{self.seed}-{'recent' if recent else 'main'}")
        age = RECENT_STOCK_AGE if recent else MAIN_STOCK_AGE
        for item in stock_imports(products=self.products, consumed=consumed, recent=recent):
            batch = stock_import(item, actor=self.staff.inventory, rng=codes, now=self.now)
            if batch is not None:
                self.backdates.batch(batch, when=self.now - age)


def _history(
    demo: DemoClient,
    plans: list[PlannedOrder],
    products: dict[str, Product],
    *,
    staff: Staff,
    backdates: Backdates,
    start: datetime,
) -> int:
    """The client's closed orders not placed yet, oldest first, and the mid-month wire."""
    existing = set(_demo_orders(demo).values_list("reference_code", flat=True))
    mid_month = start + timedelta(days=DAYS / 2)
    top_up_done = mid_month_top_up_done(demo)
    created = 0
    for plan in plans:
        if not top_up_done and plan.placed_at > mid_month:
            mid_month_top_up(demo, staff=staff, at=plan.placed_at, backdates=backdates)
            top_up_done = True
        if plan.reference_code in existing:
            continue
        _act(plan, demo, products, staff=staff, backdates=backdates)
        created += 1
    return created


def _open_orders(
    demo: DemoClient,
    products: dict[str, Product],
    *,
    staff: Staff,
    backdates: Backdates,
    seed: int,
    now: datetime,
) -> int:
    """A fresh handful on the slow vendor, unless some of the last handful are still open."""
    if _open_on_slow_vendor(demo).exists():
        return 0
    codes = _demo_orders(demo).values_list("reference_code", flat=True)
    first = max((_number(code) for code in codes), default=0) + 1
    plans = open_plan(demo.spec, seed=seed, now=now, first_number=first)
    for plan in plans:
        _act(plan, demo, products, staff=staff, backdates=backdates)
    return len(plans)


def _act(
    plan: PlannedOrder,
    demo: DemoClient,
    products: dict[str, Product],
    *,
    staff: Staff,
    backdates: Backdates,
) -> None:
    product = products[plan.product.name]
    try:
        order = order_place(plan, demo, product)
    except InsufficientFunds:
        wallet_refill(demo, staff=staff, at=plan.placed_at, backdates=backdates)
        order = order_place(plan, demo, product)
    order_play(plan, order, staff=staff)
    backdates.order(order.pk, placed_at=plan.placed_at)


def _demo_orders(demo: DemoClient) -> QuerySet[Order]:
    return Order.objects.filter(
        client=demo.client, reference_code__startswith=f"{demo.spec.prefix}-"
    )


def _open_on_slow_vendor(demo: DemoClient) -> QuerySet[Order]:
    return _demo_orders(demo).filter(
        product__vendor__adapter=SLOW_ADAPTER, status__in=status_values(OPEN_STATUSES)
    )


def _number(reference_code: str) -> int:
    match = re.fullmatch(r"[A-Z]+-(\d+)", reference_code)
    return int(match.group(1)) if match else 0


def _count(report: DemoReport, clients: list[DemoClient]) -> None:
    report.demo_orders = sum(_demo_orders(demo).count() for demo in clients)
    report.open_orders = sum(_open_on_slow_vendor(demo).count() for demo in clients)
    report.products = Product.objects.count()
    report.vouchers_in_stock = Voucher.objects.filter(status=InventoryStatus.AVAILABLE).count()
