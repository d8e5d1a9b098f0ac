"""Stock reads of the inventory workspace, fulfilment and the API: what can be
allocated, stock per product and denomination, low stock and expiry."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone

from orders.enums import InventoryStatus
from orders.errors import NotFound, ValidationFailed
from orders.models import Product, Voucher, VoucherRollup, VoucherSoldDayRollup
from orders.models.catalog import denomination_values
from orders.models.rollups import EXPIRED_BUCKET
from orders.rules import allocatable_q, expired_stock_q, holds_stock, is_low_stock
from orders.selectors.rollups import rollup_state

# The encrypted columns a list never needs to load.
_SECRET_COLUMNS = ("card_number", "pin_code", "voucher_reference_number", "claim_url")
_DELIVERED = (InventoryStatus.DELIVERED, InventoryStatus.COMPLETED)
_ROLLED_FIGURES = ("available", "expired", "allocated", "delivered", "blocked", "revoked")
SOLD_DAYS = 7  # `StockRow.sold_7d`: units delivered in the last 7 UTC days, today included


def allocatable_vouchers(*, product_id: int, denomination: Decimal) -> QuerySet[Voucher]:
    """AVAILABLE, unexpired units of one product and denomination, earliest expiry first."""
    return Voucher.objects.filter(
        allocatable_q(), product_id=product_id, denomination=denomination
    ).order_by("expires_at", "id")


def available_stock(*, product_id: int, denomination: Decimal, at_most: int | None = None) -> int:
    """How many units inventory can deliver now; with `at_most`, counted no
    further than that (an index range of at most that many rows, not the
    whole stock): enough to tell whether stock covers an order."""
    found = allocatable_vouchers(product_id=product_id, denomination=denomination)
    if at_most is None:
        return found.count()
    return found.order_by().values("pk")[: max(at_most, 0)].count()


def stock_by_denomination(*, product_ids: Sequence[int]) -> dict[int, dict[Decimal, int]]:
    """Allocatable units per product and denomination, in one aggregate query."""
    rows = (
        Voucher.objects.filter(allocatable_q(), product_id__in=list(product_ids))
        .values("product_id", "denomination")
        .annotate(units=Count("id"))
        .order_by()
    )
    stock: dict[int, dict[Decimal, int]] = {}
    for row in rows:
        stock.setdefault(row["product_id"], {})[Decimal(row["denomination"])] = row["units"]
    return stock


def active_products(*, product_id: int | None = None) -> list[Product]:
    """Products a client may buy, by name (one product when `product_id` is given)."""
    qs = Product.objects.filter(is_active=True).order_by("name", "id")
    if product_id is not None:
        qs = qs.filter(pk=product_id)
    return list(qs)


@dataclass(frozen=True, kw_only=True)
class StockLevel:
    """Allocatable units of one product and denomination, and whether that is low:
    what the overview's low-stock table needs (`StockRow` adds the other figures).
    `available` counts AVAILABLE units that have not expired (what fulfilment can
    deliver)."""

    product_id: int
    product_name: str
    currency: str
    denomination: Decimal
    available: int
    low_stock_threshold: int
    product_kind: str = ""
    product_active: bool = True

    @property
    def low_stock(self) -> bool:
        """Low stock, the one definition the overview and the inventory page show:
        an active product sold from stock (not a top-up) with fewer allocatable
        units than its threshold."""
        return (
            self.product_active
            and holds_stock(self.product_kind)
            and is_low_stock(available=self.available, threshold=self.low_stock_threshold)
        )


@dataclass(frozen=True, kw_only=True)
class StockRow(StockLevel):
    """Stock of one product and denomination, as the inventory admin sees it.

    `expired` counts AVAILABLE units past their expiry, waiting for an admin.
    `delivered` includes COMPLETED units. `sold_7d` counts units delivered in the
    last 7 UTC days, today included.
    """

    expired: int
    allocated: int
    delivered: int
    blocked: int
    revoked: int
    next_expiry: datetime | None
    sold_7d: int
    days_of_cover: Decimal | None


def _stock_counts_live(*, now: datetime) -> dict[tuple[int, Decimal], dict[str, Any]]:
    """Every voucher counted per product x denomination: one grouped query over the
    whole table (what the rollups are checked against; used until they exist)."""
    live = allocatable_q(now=now)
    groups = (
        Voucher.objects.order_by()
        .values("product_id", "denomination")
        .annotate(
            available=Count("id", filter=live),
            expired=Count("id", filter=expired_stock_q(now=now)),
            allocated=Count("id", filter=Q(status=InventoryStatus.ALLOCATED)),
            delivered=Count("id", filter=Q(status__in=_DELIVERED)),
            blocked=Count("id", filter=Q(status=InventoryStatus.BLOCKED)),
            revoked=Count("id", filter=Q(status=InventoryStatus.REVOKED)),
            next_expiry=Min("expires_at", filter=live),
            sold_7d=Count("id", filter=Q(delivered_at__gte=_sold_since(now))),
        )
    )
    return {(g["product_id"], g["denomination"]): dict(g) for g in groups}


def _sold_since(now: datetime) -> datetime:
    """The start of the 7 UTC days, today included, that `sold_7d` counts."""
    first = now.astimezone(UTC).date() - timedelta(days=SOLD_DAYS - 1)
    return datetime.combine(first, time.min, tzinfo=UTC)


def _stock_counts_rolled(*, now: datetime) -> dict[tuple[int, Decimal], dict[str, Any]]:
    """The same counts from the voucher rollups (as of their last refresh): two
    grouped queries over a few rows per product and denomination."""
    counts: dict[tuple[int, Decimal], dict[str, Any]] = {}
    figures = VoucherRollup.objects.order_by().values_list("product_id", "denomination")
    for product_id, denomination, *units, next_expiry in figures.annotate(
        available=Sum("units", filter=Q(status=InventoryStatus.AVAILABLE)),
        expired=Sum("units", filter=Q(status=EXPIRED_BUCKET)),
        allocated=Sum("units", filter=Q(status=InventoryStatus.ALLOCATED)),
        delivered=Sum("units", filter=Q(status__in=_DELIVERED)),
        blocked=Sum("units", filter=Q(status=InventoryStatus.BLOCKED)),
        revoked=Sum("units", filter=Q(status=InventoryStatus.REVOKED)),
        next_expiry=Min("next_expiry", filter=Q(status=InventoryStatus.AVAILABLE)),
    ):
        group = dict(zip(_ROLLED_FIGURES, [n or 0 for n in units], strict=True))
        group["next_expiry"] = next_expiry
        counts[(product_id, Decimal(denomination))] = group
    sold = (
        VoucherSoldDayRollup.objects.filter(day__gte=_sold_since(now).date())
        .order_by()
        .values_list("product_id", "denomination")
        .annotate(sold_7d=Sum("units"))
    )
    for product_id, denomination, units in sold:
        counts.setdefault((product_id, Decimal(denomination)), {})["sold_7d"] = units or 0
    return counts


def _available_counts(*, now: datetime, rolled: bool) -> dict[tuple[int, Decimal], int]:
    """Allocatable units per product x denomination, for every product and
    denomination `_stock_counts_*` has a row for (so the same keys): from the
    voucher rollup (one filtered sum over its rows) or, before it exists, from
    every voucher."""
    rows: QuerySet[Any, tuple[Any, ...]]
    if rolled:
        rows = (
            VoucherRollup.objects.order_by()
            .values_list("product_id", "denomination")
            .annotate(available=Sum("units", filter=Q(status=InventoryStatus.AVAILABLE)))
        )
    else:
        rows = (
            Voucher.objects.order_by()
            .values_list("product_id", "denomination")
            .annotate(available=Count("id", filter=allocatable_q(now=now)))
        )
    return {(pid, Decimal(denomination)): n or 0 for pid, denomination, n in rows}


class _Owner(NamedTuple):
    """The product columns the stock figures show."""

    pk: int
    name: str
    kind: str
    currency: str
    low_stock_threshold: int
    is_active: bool


def _stock_keys(
    counted: Iterable[tuple[int, Decimal]],
) -> Iterator[tuple[_Owner, Decimal, tuple[int, Decimal]]]:
    """Every product x denomination the stock figures show: those counted, and the
    listed denominations of active products sold from stock even with no stock
    (that is when they matter); with the product of each. Products are read as
    values, not models: the page reads all of them."""
    keys = set(counted)
    stocked = {product_id for product_id, _ in keys}
    # Every product (a catalogue, not a growing table), the ones to skip skipped
    # here: cheaper than sending the ids of every stocked product to filter on.
    products = Product.objects.order_by().values_list(
        "id",
        "name",
        "kind",
        "currency",
        "low_stock_threshold",
        "is_active",
        "denominations",
        "min_denomination",
        "max_denomination",
    )
    by_id = {}
    for pk, name, kind, currency, threshold, active, listed, low, high in products:
        owner = _Owner(pk, name, kind, currency, threshold, active)
        if not owner.is_active and owner.pk not in stocked:
            continue
        by_id[owner.pk] = owner
        is_range = low is not None and high is not None  # Product.is_range
        if owner.is_active and holds_stock(owner.kind) and not is_range:
            keys.update((owner.pk, value) for value in denomination_values(listed))
    for key in keys:
        found = by_id.get(key[0])
        if found is not None:
            yield found, key[1], key


def _stock_order(row: StockLevel) -> tuple[str, int, Decimal]:
    return (row.product_name.lower(), row.product_id, row.denomination)


@dataclass(frozen=True)
class StockOverview:
    rows: list[StockRow]
    as_of: datetime | None  # when the rollups were refreshed; None: all counted live


def stock_report() -> StockOverview:
    """Stock per product x denomination (see `_stock_keys` for which).
    From the rollups, as of their last refresh (`as_of`); from every voucher
    until they are first built."""
    now = timezone.now()
    state = rollup_state()
    rolled = state is not None
    counts = _stock_counts_rolled(now=now) if rolled else _stock_counts_live(now=now)
    rows = []
    for owner, denomination, key in _stock_keys(counts):
        group = counts.get(key, {})
        available, sold = group.get("available", 0), group.get("sold_7d", 0)
        cover = (Decimal(available * 7) / sold).quantize(Decimal("0.1")) if sold else None
        rows.append(
            StockRow(
                product_id=owner.pk,
                product_name=owner.name,
                currency=owner.currency,
                denomination=denomination,
                available=available,
                expired=group.get("expired", 0),
                allocated=group.get("allocated", 0),
                delivered=group.get("delivered", 0),
                blocked=group.get("blocked", 0),
                revoked=group.get("revoked", 0),
                next_expiry=group.get("next_expiry"),
                sold_7d=sold,
                days_of_cover=cover,
                low_stock_threshold=owner.low_stock_threshold,
                product_kind=owner.kind,
                product_active=owner.is_active,
            )
        )
    rows.sort(key=_stock_order)
    return StockOverview(rows=rows, as_of=state.refreshed_at if state is not None else None)


def stock_overview() -> list[StockRow]:
    """The rows of `stock_report`."""
    return stock_report().rows


def low_stock() -> list[StockLevel]:
    """The products and denominations of `stock_report` that are low on stock,
    fewest units first. Reads only the allocatable units, not every figure of
    the stock page."""
    now = timezone.now()
    counts = _available_counts(now=now, rolled=rollup_state() is not None)
    levels = [
        StockLevel(
            product_id=owner.pk,
            product_name=owner.name,
            currency=owner.currency,
            denomination=denomination,
            available=counts.get(key, 0),
            low_stock_threshold=owner.low_stock_threshold,
            product_kind=owner.kind,
            product_active=owner.is_active,
        )
        for owner, denomination, key in _stock_keys(counts)
    ]
    rows = sorted((level for level in levels if level.low_stock), key=_stock_order)
    return sorted(rows, key=lambda row: (row.available, row.product_name, row.denomination))


def expiring_vouchers(*, within_days: int) -> QuerySet[Voucher]:
    """AVAILABLE vouchers expiring within `within_days` (or already expired, still
    AVAILABLE), earliest first, with the product joined and no secret column loaded."""
    if within_days < 0:
        raise ValidationFailed("within_days must be 0 or more.", field="within_days")
    # Expired by then: the units a sweep `within_days` from now would take out.
    by_then = timezone.now() + timedelta(days=within_days)
    return (
        Voucher.objects.filter(expired_stock_q(now=by_then))
        .select_related("product")
        .defer(*_SECRET_COLUMNS)
        .order_by("expires_at", "id")
    )


def dashboard_voucher_get(*, voucher_id: int) -> Voucher:
    """A voucher that belongs to an order item (its order joined), or NotFound."""
    voucher = (
        Voucher.objects.select_related("order_item__order")
        .filter(pk=voucher_id, order_item__isnull=False)
        .first()
    )
    if voucher is None:
        raise NotFound()
    return voucher
