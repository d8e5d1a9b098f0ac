"""What happens to each demo order, decided up front from one seed.

Per client: 95 closed orders spread over the last 30 days, one slot each, and a
handful of open orders placed in the last minutes on the slow vendor's product
(the worker keeps retrying them; agents practise cancel and retry on them).
An outcome fixes the product, denomination and quantity it needs: vendor
trouble only where no stock would deliver first, refunds waiting for finance
only above the automatic limit.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from orders.demo.catalog import PRODUCTS, ClientSpec, Pair, ProductSpec
from orders.rules import cents, prorata
from orders.services.placing import Customer

DAYS = 30
# Open orders were placed this recently; a closed order's story (finance included)
# ends within LIFECYCLE, before the open window.
OPEN_WINDOW = timedelta(minutes=20)
LIFECYCLE = timedelta(hours=4)

# What happens to an order.
DELIVERED = "delivered"
RECONCILED = "reconciled"  # delivered, then matched with the vendor statement
FAILED = "failed"
CANCELLED = "cancelled"
PARTIAL = "partial"
# Open: placed only / the slow vendor answered "pending" / then an agent asked for
# a retry / the worker died while asking the vendor.
PLACED = "placed"
WAITING = "waiting on the vendor"
RETRY_REQUESTED = "retry requested"
STALLED = "stalled"
# What becomes of the undelivered value (closed orders that owe one).
PAID = "paid"  # automatically, or approved by finance above the limit
TWO_APPROVALS = "two approvals"  # above the second-approval limit: finance, then admin
OWED = "owed"  # waits for finance
HELD = "held"  # waits for finance, who put it on hold with a note
# Variants of a failure and a cancellation.
REJECTED, EXPIRED = "vendor rejected", "retry window expired"
AT_ONCE, AFTER_A_RETRY = "at once", "after a retry"


@dataclass(frozen=True)
class Outcome:
    kind: str
    refund: str = ""
    variant: str = ""
    link_claimed: bool = False  # a delivered URL voucher: claimed or not yet


CLOSED_OUTCOMES: dict[tuple[str, str], int] = {
    (DELIVERED, ""): 62,
    (RECONCILED, ""): 5,
    (FAILED, PAID): 7,
    (FAILED, TWO_APPROVALS): 1,
    (FAILED, OWED): 1,
    (FAILED, HELD): 1,
    (CANCELLED, PAID): 8,
    (CANCELLED, OWED): 2,
    (PARTIAL, PAID): 6,
    (PARTIAL, OWED): 2,
}
OPEN_OUTCOMES = {PLACED: 1, WAITING: 2, RETRY_REQUESTED: 1, STALLED: 1}
FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Katherine", "Tim", "Barbara", "Ken"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Hamilton", "Johnson", "Liskov", "Ritchie"]


@dataclass(frozen=True)
class PlannedOrder:
    number: int
    reference_code: str
    outcome: Outcome
    placed_at: datetime
    product: ProductSpec
    denomination: Decimal
    quantity: int
    customer: Customer


def reference_code(spec: ClientSpec, number: int) -> str:
    return f"{spec.prefix}-{number:05d}"


def closed_plan(
    spec: ClientSpec, *, seed: int, start: datetime, now: datetime
) -> list[PlannedOrder]:
    """The client's history, oldest first; the same for the same seed and `start`."""
    # Its own generator, so the plan is the same whatever ran before it.
    rng = random.Random(f"{seed}-{spec.prefix}")
    catalog = [p for p in PRODUCTS if p.currency == spec.currency and not p.is_slow]
    vendor_pairs = [(p, d) for p in catalog for d in p.orderable if not p.stocked(d)]
    outcomes = [key for key, count in CLOSED_OUTCOMES.items() for _ in range(count)]
    rng.shuffle(outcomes)
    # One slot each with jitter under half a slot: one client's orders never overlap.
    slot = (now - OPEN_WINDOW - LIFECYCLE - start) / len(outcomes)
    plans = []
    for index, (kind, refund) in enumerate(outcomes):
        placed = start + slot * index + slot * 0.45 * rng.random()
        if kind == DELIVERED:
            product = rng.choice(catalog)
            denomination = rng.choice(product.orderable)
            quantity = _quantity(rng)
        else:
            product, denomination, quantity = _vendor_order(rng, vendor_pairs, kind, refund)
        variant = ""
        if kind == FAILED:
            variant = rng.choice([REJECTED, EXPIRED])
        elif kind == CANCELLED:
            variant = rng.choice([AT_ONCE, AFTER_A_RETRY])
        outcome = Outcome(kind, refund, variant, link_claimed=rng.random() < 0.5)
        plans.append(
            PlannedOrder(
                number=index + 1,
                reference_code=reference_code(spec, index + 1),
                outcome=outcome,
                placed_at=placed.replace(microsecond=0),
                product=product,
                denomination=denomination,
                quantity=quantity,
                customer=_customer(rng),
            )
        )
    return sorted(plans, key=lambda plan: plan.placed_at)


def open_plan(
    spec: ClientSpec, *, seed: int, now: datetime, first_number: int
) -> list[PlannedOrder]:
    """A handful of orders on the slow vendor's product, placed in the last minutes."""
    rng = random.Random(f"{seed}-{spec.prefix}-open-{first_number}")
    product = next(p for p in PRODUCTS if p.currency == spec.currency and p.is_slow)
    kinds = [kind for kind, count in OPEN_OUTCOMES.items() for _ in range(count)]
    rng.shuffle(kinds)
    slot = (OPEN_WINDOW - timedelta(minutes=2)) / len(kinds)
    plans = []
    for index, kind in enumerate(kinds):
        placed = now - OPEN_WINDOW + slot * index + slot * 0.5 * rng.random()
        number = first_number + index
        plans.append(
            PlannedOrder(
                number=number,
                reference_code=reference_code(spec, number),
                outcome=Outcome(kind),
                placed_at=placed.replace(microsecond=0),
                product=product,
                denomination=rng.choice(product.orderable),
                quantity=rng.choice([1, 1, 2]),
                customer=_customer(rng),
            )
        )
    return plans


def stock_consumed(plans: list[PlannedOrder]) -> Counter[Pair]:
    """Units the history delivers from stock: deliveries of a stocked denomination
    (everything else is planned where no stock is)."""
    consumed: Counter[Pair] = Counter()
    for plan in plans:
        if plan.outcome.kind == DELIVERED and plan.product.stocked(plan.denomination):
            consumed[(plan.product.name, plan.denomination)] += plan.quantity
    return consumed


def _quantity(rng: random.Random) -> int:
    return rng.choices([1, 2, 3], weights=[70, 20, 10])[0]


def _vendor_order(
    rng: random.Random, pairs: list[tuple[ProductSpec, Decimal]], kind: str, refund: str
) -> tuple[ProductSpec, Decimal, int]:
    """A product and denomination no stock covers (the vendor fills, fails or is
    reconciled), and a quantity whose refund is large enough for the refund path
    planned (finance, or two approvers)."""
    quantities = [2, 3] if kind == PARTIAL else [1, 2, 3]
    floor = _refund_floor(refund)
    if floor is None:
        product, denomination = rng.choice(pairs)
        quantity = rng.choice(quantities) if kind == PARTIAL else _quantity(rng)
        return product, denomination, quantity
    options = [(p, d, q) for p, d in pairs for q in quantities]

    def refund_of(option: tuple[ProductSpec, Decimal, int]) -> Decimal:
        product, denomination, quantity = option
        charged = cents(denomination * quantity * (1 - Decimal(product.discount_percent) / 100))
        undelivered = quantity - 1 if kind == PARTIAL else quantity
        return prorata(charged=charged, undelivered=undelivered, quantity=quantity)

    large = [option for option in options if refund_of(option) > floor]
    return rng.choice(large) if large else max(options, key=refund_of)


def _refund_floor(refund: str) -> Decimal | None:
    """The refund must exceed this to take the planned path; None: any amount."""
    if refund in (OWED, HELD):
        return Decimal(settings.AUTO_REFUND_LIMIT)
    if refund == TWO_APPROVALS:
        return Decimal(settings.REFUND_SECOND_APPROVAL_LIMIT)
    return None


def _customer(rng: random.Random) -> Customer:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return Customer(
        name=f"{first} {last}",
        email=f"{first}.{last}{rng.randint(1, 99)}@example.com".lower(),
        phone=f"+4477009{rng.randint(10000, 99999)}",
    )
