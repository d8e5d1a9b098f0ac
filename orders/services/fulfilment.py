"""Fulfilment: inventory first, then the vendor; retries, cancellation, admin retry.

Placed orders in stock are delivered set-based; everything else runs as a
sequence of short transactions, each locking the order row with one SELECT
and re-checking its state, with every vendor call in between and OUTSIDE any
transaction (a slow vendor never holds a lock). Each commit is a recovery
point: a run killed after it resumes from there, one killed before it left
nothing of that step behind.

S. stock batch (`orders_deliver_ready`, run by the worker's stock batcher;
   `order_fulfil_task` runs one too): ONE transaction claims ready orders
   (PLACED, sold from stock, live, no lease, not handed to their own run;
   FOR NO KEY UPDATE SKIP LOCKED, up to FULFILMENT_BATCH_SIZE), allocates
   AVAILABLE, unexpired vouchers (earliest expiry first, SKIP LOCKED) with
   one SELECT per product and denomination, marks vouchers and items
   DELIVERED with one UPDATE each, writes timeline, audit and webhook events
   in bulk and commits. An order the stock cannot cover entirely is handed
   to its own run in the same commit: its task is queued and
   `next_attempt_at` set, so no batch claims it again. A voucher is on at
   most one item (OrderItem.voucher is one-to-one). Orders a batch takes
   (`in_stock_batch`) get no task of their own when they are placed; the
   recovery sweep gives one to any left PLACED for a lease.
B. begin: take a lease on the order (`leased_until = now + TASK_LEASE_SECONDS`);
   a second run while the lease holds (a duplicated task) does nothing, and so
   does a run before the scheduled retry is due (`next_attempt_at`).
I. inventory: what stock has for the missing units, set-based; finishes the
   order when that was all of them.
E. engage the vendor: the units still missing are marked with the order's
   idempotency key before the vendor is called.
C. vendor order created: its reference is stored as soon as the vendor
   answers; units it refused fail.
F. vouchers stored: fetched vouchers are stored encrypted, idempotent on
   their fingerprint, and the order finishes: DELIVERED, PARTIALLY_DELIVERED
   or FAILED, the webhook event, and the refund of the undelivered value
   (see refunds).
R. retry later (transient error; finishes the order once the retry window
   has closed). X. vendor rejected: the order finishes.
Top-ups commit after each operator answer, then finish.

A LINK order (delivery_method LINK) gets one gift link per delivered unit in the
same commit that delivers it (S, or F/I through `_finish`): the order passes
PENDING/GV_LINK_PENDING to DELIVERED/GV_LINK_UNCLAIMED in that commit, so none
is ever delivered without its links (services/gift_links.py).

A crash anywhere resumes from what was persisted and the vendor, keyed by the
same idempotency key, never sells twice. Every run ends by giving the lease
back: the order is finished, or waits for its retry. Transient vendor errors
retry with exponential backoff until the retry window closes; a killed
worker's order is picked up by the recovery sweep once its lease has run out.
The task `order_fulfil_task` runs `order_fulfil` with a batch of
FULFILMENT_BATCH_SIZE; a direct call delivers only its own order.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.tasks import task
from django.utils import timezone

from orders import logs
from orders.enums import (
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    ProductKind,
    RechargeStatus,
    SubStatus,
    VoucherSource,
    WebhookEvent,
)
from orders.errors import OrderNotCancellable, OrderNotRetryable, ValidationFailed
from orders.models import ApiCredential, Order, OrderItem, Voucher
from orders.rules import (
    holds_stock,
    is_leased,
    is_open,
    is_retryable,
    is_terminal,
    lease_held_q,
    progressed_items_q,
)
from orders.selectors.inventory import allocatable_vouchers
from orders.services.actors import Actor
from orders.services.audit import AuditEntry, audit_record, audit_records
from orders.services.backoff import backoff_seconds
from orders.services.gift_links import gift_links_create, is_link_order
from orders.services.inventory import voucher_fingerprint
from orders.services.refunds import refund_schedule
from orders.services.transitions import (
    order_transition,
    order_transition_held,
    orders_transition_held,
)
from orders.services.webhooks import webhook_event_emit, webhook_events_emit
from orders.tasks import enqueue_on_commit, enqueue_with_transaction
from orders.vendors import get_adapter, get_operator, sandbox_scenario
from orders.vendors.base import (
    RechargeResult,
    VendorOrder,
    VendorRejected,
    VendorTransientError,
    VendorVoucher,
)

logger = logging.getLogger(__name__)

SYSTEM = Actor.system("fulfilment")


def idempotency_key(*, order: Order) -> str:
    """The order's key with the vendor: stable across retries, unique per order."""
    raw = f"{order.client_id}:{order.reference_code}:{order.placed_at.isoformat()}"
    return f"SO-{order.pk}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def retry_delay_seconds(*, attempts: int) -> int:
    """Backoff after the n-th transient failure: base × 2^(n-1), at most an hour."""
    return backoff_seconds(base=settings.FULFILMENT_RETRY_BASE_SECONDS, attempts=attempts)


def _locked(order_id: int) -> Order:
    """One step's one read of the order: its row locked, product, vendor and credential joined."""
    return (
        Order.objects.select_for_update(no_key=True, of=("self",))
        .select_related("product__vendor", "credential")
        .get(pk=order_id)
    )


def _move(order: Order, status: OrderStatus, sub_status: SubStatus, note: str = "") -> Order:
    return order_transition_held(
        order=order, status=status, sub_status=sub_status, actor=SYSTEM, note=note
    )


# --- The run -----------------------------------------------------------------


@task
def order_fulfil_task(order_id: int, request_id: str = "") -> None:
    """Fulfil a placed order (inventory first, then the vendor); ready orders from
    stock are delivered in batches of FULFILMENT_BATCH_SIZE with it. Logged with
    the id of the request that queued it."""
    with logs.bound(request_id=request_id or None, order_id=order_id):
        order_fulfil(order_id=order_id, batch_size=settings.FULFILMENT_BATCH_SIZE)


def order_fulfil(*, order_id: int, batch_size: int = 1) -> Order:
    """Deliver every unit once (inventory, then vendor); safe to run twice or concurrently.

    Not one transaction on purpose: vendor calls happen between short locked
    steps, never inside a transaction. A placed order in stock is delivered
    by `orders_deliver_from_stock` in one transaction, with up to
    `batch_size - 1` other ready orders.
    """
    batch = _stock_batch(order_id=order_id, limit=batch_size, begin=True)
    delivered, began = batch.delivered, batch.began
    if order_id in delivered:
        return delivered[order_id]
    if began is None:
        # Most often another run's batch has already delivered it: finished
        # orders never change again, so that needs no lock (one plain read).
        seen = Order.objects.get(pk=order_id)
        if is_terminal(seen.status):
            return seen
    order = began if began is not None else _begin(order_id)
    if order is None:
        return Order.objects.get(pk=order_id)
    if not holds_stock(order.product_kind):
        return _fulfil_topup(order)
    if sandbox_scenario(order) is None:
        finished = _allocate_inventory(order_id)
        if finished is not None:
            return finished
    return _fulfil_from_vendor(order_id)


# --- Inventory: ready orders in one transaction --------------------------------

# Product kinds sold from voucher stock (the rule is `holds_stock`).
STOCKED_KINDS = [kind for kind in ProductKind.values if holds_stock(kind)]


def _ready_for_stock(*, now: datetime) -> QuerySet[Order]:
    """Orders a stock batch may take: PLACED (no run has touched them), sold from
    stock, live (test-mode orders take the simulated path), with no lease, and
    not handed to their own run (`next_attempt_at`). `in_stock_batch` is the
    same rule for an order being placed."""
    return Order.objects.filter(
        ~lease_held_q(at=now),
        Q(credential__isnull=True) | Q(credential__mode=ApiCredential.Mode.LIVE),
        status=OrderStatus.PLACED,
        product_kind__in=STOCKED_KINDS,
        next_attempt_at__isnull=True,
    )


def in_stock_batch(*, product_kind: str, credential: ApiCredential | None) -> bool:
    """Whether a new order is left to the worker's stock batcher instead of a task
    of its own: `_ready_for_stock` for an order just placed, with the batcher on."""
    return (
        settings.FULFILMENT_STOCK_BATCHER
        and product_kind in STOCKED_KINDS
        and (credential is None or credential.mode == ApiCredential.Mode.LIVE)
    )


def _link_items(pairs: list[tuple[int, int]], now: datetime) -> None:
    """Put voucher v on item i for every (i, v), DELIVERED, in one statement.

    The one raw statement of fulfilment: PostgreSQL joins the pairs as two
    arrays (no per-unit round trip, a constant number of parameters); other
    databases get a bulk UPDATE in chunks.
    """
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(OrderItem._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS i SET voucher_id = v.voucher_id, status = %s, "  # noqa: S608
                "delivered_at = %s, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(item_id, voucher_id) "
                "WHERE i.id = v.item_id AND i.voucher_id IS NULL",
                [
                    ItemStatus.DELIVERED,
                    now,
                    now,
                    [item_id for item_id, _ in pairs],
                    [voucher_id for _, voucher_id in pairs],
                ],
            )
            linked = cursor.rowcount
    else:
        items = [
            OrderItem(
                pk=item_id,
                voucher_id=voucher_id,
                status=ItemStatus.DELIVERED,
                delivered_at=now,
                updated_at=now,
            )
            for item_id, voucher_id in pairs
        ]
        linked = OrderItem.objects.bulk_update(
            items, ["voucher", "status", "delivered_at", "updated_at"], batch_size=300
        )
    if linked != len(pairs):  # the items are read under their order's lock: never happens
        raise RuntimeError(f"linked {linked} of {len(pairs)} items; the batch is rolled back")


def _chunks(ids: list[int]) -> list[list[int]]:
    size = len(ids) if connection.vendor == "postgresql" else 500
    return [ids[at : at + size] for at in range(0, len(ids), max(size, 1))]


def orders_deliver_from_stock(*, order_id: int | None = None, limit: int = 1) -> dict[int, Order]:
    """Deliver ready orders from stock in one transaction (see `_stock_batch`)."""
    return _stock_batch(order_id=order_id, limit=limit, begin=False).delivered


def orders_deliver_ready(*, limit: int) -> int:
    """One round of the stock batcher: deliver up to `limit` ready orders in one
    transaction (see `_stock_batch`). Returns how many it claimed: `limit` means
    more may be waiting."""
    return _stock_batch(order_id=None, limit=limit, begin=False).claimed


def orders_deliver_all_ready() -> int:
    """Stock batches of FULFILMENT_BATCH_SIZE until no ready order is left (the
    batcher of `run_worker --batch`); how many orders they claimed."""
    batch, claimed = settings.FULFILMENT_BATCH_SIZE, 0
    while (taken := orders_deliver_ready(limit=batch)) > 0:
        claimed += taken
        if taken < batch:
            break
    return claimed


@dataclass(frozen=True)
class _Batch:
    delivered: dict[int, Order]
    began: Order | None  # with begin=True: the run's own order, claimed, begun, not delivered
    claimed: int


def _hand_off(orders: list[Order], now: datetime) -> None:
    """Give claimed orders the stock could not cover to their own runs, in the
    batch's commit: a task each, and `next_attempt_at` so no batch claims them again.
    With the batcher off every order was placed with its task: nothing to do (one
    placed while it was on and left PLACED is the recovery sweep's)."""
    if not orders or not settings.FULFILMENT_STOCK_BATCHER:
        return
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        next_attempt_at=now, updated_at=now
    )
    for order in orders:
        enqueue_with_transaction(order_fulfil_task, order.pk)


def _stock_batch(*, order_id: int | None, limit: int, begin: bool) -> _Batch:
    """Deliver ready orders from stock, set-based, in ONE short transaction.

    Claims up to `limit` ready orders (`order_id` first when it is ready) with
    FOR NO KEY UPDATE SKIP LOCKED, so concurrent workers take disjoint
    batches; allocates their vouchers with one SELECT ... FOR NO KEY UPDATE
    SKIP LOCKED per product and denomination and one UPDATE of all of them;
    links items and vouchers with one UPDATE; writes the timeline (PLACED ->
    PENDING/PROCESSING -> DELIVERED/INVENTORY_FULFILLED), the allocation audit
    events and the webhook events in bulk. An order the stock cannot cover
    entirely is handed to its own run (inventory, then the vendor).
    Returns the delivered orders by id and, with `begin`, order `order_id`
    when it was claimed but not delivered: its run began (lease, PENDING/PROCESSING) in
    the same transaction (recovery points S and B in one commit). Statements
    do not grow with the number of orders or units (apart from webhook
    payloads of subscribed clients).
    """
    with transaction.atomic():
        now = timezone.now()
        first = Case(When(pk=order_id, then=Value(0)), default=Value(1))
        claimed = list(
            _ready_for_stock(now=now)
            .select_for_update(no_key=True, skip_locked=True, of=("self",))
            .select_related("product__vendor", "credential")
            .order_by(first, "placed_at", "id")[: max(limit, 1)]
        )
        if not claimed:
            return _Batch({}, None, 0)
        items: dict[int, list[int]] = {order.pk: [] for order in claimed}
        fresh = OrderItem.objects.filter(
            order_id__in=list(items), status=ItemStatus.PENDING, voucher__isnull=True, vendor_ref=""
        ).order_by("order_id", "position")
        for item_id, owner_id in fresh.values_list("pk", "order_id"):
            items[owner_id].append(item_id)
        groups: dict[tuple[int, Decimal], list[Order]] = {}
        for order in claimed:
            if len(items[order.pk]) == order.quantity:  # untouched since it was placed
                groups.setdefault((order.product_id, order.denomination), []).append(order)
        served: list[Order] = []
        pairs: list[tuple[int, int]] = []
        allocated: dict[int, list[int]] = {}
        for (product_id, denomination), group in groups.items():
            picked = list(
                allocatable_vouchers(product_id=product_id, denomination=denomination)
                .select_for_update(no_key=True, skip_locked=True)
                .values_list("pk", flat=True)[: sum(order.quantity for order in group)]
            )
            at = 0
            for order in group:
                if len(picked) - at < order.quantity:
                    continue  # short of stock: its own run takes what is left, then the vendor
                mine = picked[at : at + order.quantity]
                at += order.quantity
                served.append(order)
                allocated[order.pk] = mine
                pairs += zip(items[order.pk], mine, strict=True)
        own = next((o for o in claimed if o.pk == order_id and o not in served), None)
        began = _begin_held(own) if begin and own is not None else None
        _hand_off([o for o in claimed if o not in served and (o is not own or not begin)], now)
        if not served:
            return _Batch({}, began, len(claimed))
        for chunk in _chunks([voucher_id for _, voucher_id in pairs]):
            Voucher.objects.filter(pk__in=chunk).update(
                status=InventoryStatus.DELIVERED,
                allocated_at=Coalesce("allocated_at", Value(now)),
                delivered_at=now,
                updated_at=now,
            )
        _link_items(pairs, now)
        _deliver_served(served, now)
        audit_records(
            [
                AuditEntry(
                    action="order.allocate",
                    actor=SYSTEM,
                    order_id=order.pk,
                    data={"voucher_ids": allocated[order.pk], "source": "inventory"},
                )
                for order in served
            ]
        )
        webhook_events_emit(orders=served, event=WebhookEvent.ORDER_DELIVERED)
        if settings.FULFILMENT_BATCH_HOLD_SECONDS > 0:  # diagnostics and crash tests only
            time.sleep(settings.FULFILMENT_BATCH_HOLD_SECONDS)
    return _Batch({order.pk: order for order in served}, began, len(claimed))


def _deliver_served(served: list[Order], now: datetime) -> None:
    """The timeline of a stock batch's delivered orders, set-based: PENDING/PROCESSING,
    then DELIVERED/INVENTORY_FULFILLED; a LINK order gets its gift links first and
    passes through GV_LINK_PENDING to GV_LINK_UNCLAIMED, all in the batch's commit."""
    started = (OrderStatus.PENDING, SubStatus.PROCESSING, lambda _order: "Fulfilment started")
    as_codes = [
        started,
        (
            OrderStatus.DELIVERED,
            SubStatus.INVENTORY_FULFILLED,
            lambda order: f"All {order.quantity} unit(s) delivered",
        ),
    ]
    as_links = [
        started,
        (
            OrderStatus.PENDING,
            SubStatus.GV_LINK_PENDING,
            lambda order: f"Creating {order.quantity} gift link(s)",
        ),
        (
            OrderStatus.DELIVERED,
            SubStatus.GV_LINK_UNCLAIMED,
            lambda order: f"All {order.quantity} unit(s) delivered as gift links",
        ),
    ]
    codes = [order for order in served if not is_link_order(order)]
    links = [order for order in served if is_link_order(order)]
    gift_links_create(orders=links, now=now)  # no statement without LINK orders
    for orders, steps in ((codes, as_codes), (links, as_links)):
        orders_transition_held(
            orders=orders, steps=steps, actor=SYSTEM, leased_until=None, next_attempt_at=None
        )


# --- One order, step by step ---------------------------------------------------


@transaction.atomic
def _begin(order_id: int) -> Order | None:
    return _begin_held(_locked(order_id))


def _begin_held(order: Order) -> Order | None:
    """Take the lease of an order locked by the caller; None when this run must stop."""
    now = timezone.now()
    if is_terminal(order.status) or is_leased(leased_until=order.leased_until, at=now):
        return None  # finished, or another run holds the lease
    if (
        order.status == OrderStatus.PENDING
        and order.next_attempt_at
        and order.next_attempt_at > now
    ):
        return None  # the scheduled retry is not due yet
    if order.retry_deadline is None:
        order.retry_deadline = now + timedelta(seconds=settings.FULFILMENT_RETRY_WINDOW_SECONDS)
    order.leased_until = now + timedelta(seconds=settings.TASK_LEASE_SECONDS)
    order.next_attempt_at = None  # this is the attempt that was due
    order.save(update_fields=["retry_deadline", "leased_until", "next_attempt_at", "updated_at"])
    if order.status == OrderStatus.PLACED:
        order = _move(order, OrderStatus.PENDING, SubStatus.PROCESSING, "Fulfilment started")
    elif order.sub_status in (SubStatus.PENDING_REPROCESS, SubStatus.BULK_LIMIT_EXCEEDED):
        order = _move(
            order, OrderStatus.PENDING, SubStatus.PROCESSING, f"Attempt {order.attempts + 1}"
        )
    return order


def _pending_items(order: Order) -> list[OrderItem]:
    return list(order.items.filter(status=ItemStatus.PENDING).order_by("position"))


def _fail_items(items: QuerySet[OrderItem], reason: str) -> int:
    """Mark `items` FAILED (their recharge too, if one was under way), in one UPDATE."""
    return items.update(
        status=ItemStatus.FAILED,
        failure_reason=reason[:500],
        recharge_status=Case(
            When(
                recharge_status__in=[RechargeStatus.PENDING, RechargeStatus.DELIVERED],
                then=Value(RechargeStatus.FAILED),
            ),
            default=F("recharge_status"),
        ),
        updated_at=timezone.now(),
    )


def _deliver_from_stock(pairs: list[tuple[int, int]], now: datetime) -> None:
    """Vouchers (locked by the caller) DELIVERED on their items: two statements."""
    for chunk in _chunks([voucher_id for _, voucher_id in pairs]):
        Voucher.objects.filter(pk__in=chunk).update(
            status=InventoryStatus.DELIVERED,
            allocated_at=Coalesce("allocated_at", Value(now)),
            delivered_at=now,
            updated_at=now,
        )
    _link_items(pairs, now)


@transaction.atomic
def _allocate_inventory(order_id: int) -> Order | None:
    """What stock has for an order already under way; the order when that finished it."""
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order
    if order.vendor_order_ref or order.items.exclude(vendor_ref="").exists():
        return None  # the vendor already has the missing units; inventory must not double them
    missing = list(
        order.items.filter(status=ItemStatus.PENDING, voucher__isnull=True)
        .order_by("position")
        .values_list("pk", flat=True)
    )
    if not missing:
        return None
    picked = list(
        allocatable_vouchers(product_id=order.product_id, denomination=order.denomination)
        .select_for_update(skip_locked=True, no_key=True)
        .values_list("pk", flat=True)[: len(missing)]
    )
    if not picked:
        return None
    _deliver_from_stock(list(zip(missing, picked, strict=False)), timezone.now())
    audit_record(
        action="order.allocate",
        actor=SYSTEM,
        order_id=order.pk,
        data={"voucher_ids": picked, "source": "inventory"},
    )
    if len(picked) == len(missing):
        return _finish(order, cause=None)
    return None


def _deliver(item: OrderItem, voucher: Voucher, now: datetime) -> None:
    voucher.status = InventoryStatus.DELIVERED
    voucher.allocated_at = voucher.allocated_at or now
    voucher.delivered_at = now
    voucher.save(update_fields=["status", "allocated_at", "delivered_at", "updated_at"])
    item.voucher = voucher
    item.status = ItemStatus.DELIVERED
    item.delivered_at = now
    item.save(update_fields=["voucher", "status", "delivered_at", "updated_at"])


def _fulfil_from_vendor(order_id: int) -> Order:
    order, asked = _engage_vendor(order_id)
    if asked is None:
        return order
    key = idempotency_key(order=order)
    product = order.product  # joined by the step's lock: no second read
    try:
        adapter = get_adapter(product.vendor, order=order)
        if not order.vendor_order_ref:
            if not product.vendor.is_active:
                raise VendorRejected(f"vendor {product.vendor.code} is disabled")
            vendor_order = adapter.place(
                order_ref=order.reference_code,
                idempotency_key=key,
                product=product,
                denomination=order.denomination,
                quantity=asked,
            )
            order, go_on = _vendor_order_created(order_id, vendor_order)
            if not go_on:
                return order
        vouchers = adapter.fetch(vendor_order_ref=order.vendor_order_ref, product=product)
    except VendorRejected as exc:
        return _vendor_rejected(order_id, str(exc))
    except VendorTransientError as exc:
        return _retry_later(order_id, str(exc))
    except Exception as exc:  # an adapter bug must not lose the order: retry within the window
        logger.exception("Vendor adapter failed for order %s", order_id)
        return _retry_later(order_id, f"vendor adapter error: {type(exc).__name__}")
    return _store_vendor_vouchers(order_id, vouchers)


@transaction.atomic
def _engage_vendor(order_id: int) -> tuple[Order, int | None]:
    """The order and how many units the vendor is asked for (None: nothing to ask)."""
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order, None
    key = idempotency_key(order=order)
    # Persist which units the vendor is asked for BEFORE asking: a retry asks
    # for the same units with the same key instead of buying more.
    order.items.filter(status=ItemStatus.PENDING, voucher__isnull=True, vendor_ref="").update(
        vendor_ref=key, updated_at=timezone.now()
    )
    counts = order.items.aggregate(
        pending=Count("pk", filter=Q(status=ItemStatus.PENDING)),
        asked=Count("pk", filter=~Q(vendor_ref="")),
    )
    if not counts["pending"]:
        return _finish(order, cause=None), None
    if order.vendor_order_ref:
        return _move(
            order, OrderStatus.PENDING, SubStatus.VENDOR_ORDER_CREATED, "Resuming"
        ), counts["asked"]
    order = _move(
        order,
        OrderStatus.PENDING,
        SubStatus.VENDOR_ORDER_PENDING,
        f"{counts['asked']} unit(s) ordered from the vendor",
    )
    return order, counts["asked"]


@transaction.atomic
def _vendor_order_created(order_id: int, vendor_order: VendorOrder) -> tuple[Order, bool]:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        logger.warning("Vendor order %s arrived for closed order %s", vendor_order.ref, order_id)
        return order, False
    if not order.vendor_order_ref:
        order.vendor_order_ref = vendor_order.ref
        order.save(update_fields=["vendor_order_ref", "updated_at"])
    asked = list(
        order.items.exclude(vendor_ref="").order_by("position").values_list("pk", flat=True)
    )
    refused = asked[vendor_order.accepted :]
    if refused:
        _fail_items(
            OrderItem.objects.filter(pk__in=refused, status=ItemStatus.PENDING),
            vendor_order.rejected_reason or "rejected by the vendor",
        )
    order = _move(
        order,
        OrderStatus.PENDING,
        SubStatus.VENDOR_ORDER_CREATED,
        f"Vendor order {vendor_order.ref}: {vendor_order.accepted} unit(s) accepted",
    )
    return order, True


@transaction.atomic
def _store_vendor_vouchers(order_id: int, vouchers: list[VendorVoucher]) -> Order:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order
    product = order.product
    waiting = [
        item for item in _pending_items(order) if item.vendor_ref and item.voucher_id is None
    ]
    now = timezone.now()
    stored: list[int] = []
    for vendor_voucher in vouchers:
        if not waiting:
            break
        code_fp = voucher_fingerprint(
            delivery_type=order.delivery_type,
            card_number=vendor_voucher.card_number or "",
            claim_url=vendor_voucher.claim_url or "",
        )
        voucher = Voucher.objects.filter(product=product, fingerprint=code_fp).first()
        if voucher is not None:
            linked = OrderItem.objects.filter(voucher=voucher).first()
            if linked is None and voucher.source == VoucherSource.VENDOR:
                pass  # stored by an earlier run that did not link it: use it
            else:
                if linked is None or linked.order_id != order.pk:
                    logger.error("Vendor returned a code we already hold (voucher %s)", voucher.pk)
                continue  # already on this order's item, or not ours to sell again
        else:
            voucher = Voucher(
                product=product,
                denomination=order.denomination,
                card_number=vendor_voucher.card_number,
                pin_code=vendor_voucher.pin_code,
                claim_url=vendor_voucher.claim_url,
                voucher_reference_number=vendor_voucher.voucher_reference_number,
                card_last4=vendor_voucher.card_number[-4:],
                fingerprint=code_fp,
                expires_at=now + timedelta(days=vendor_voucher.expires_at_days),
                status=InventoryStatus.ALLOCATED,
                source=VoucherSource.VENDOR,
                vendor=product.vendor,
                allocated_at=now,
            )
            voucher.save()
        _deliver(waiting.pop(0), voucher, now)
        stored.append(voucher.pk)
    if waiting:
        _fail_items(
            OrderItem.objects.filter(pk__in=[item.pk for item in waiting]),
            "the vendor delivered fewer vouchers than it accepted",
        )
    if stored:
        audit_record(
            action="order.allocate",
            actor=SYSTEM,
            order_id=order.pk,
            data={
                "voucher_ids": stored,
                "source": "vendor",
                "vendor_order": order.vendor_order_ref,
            },
        )
    order = _move(order, OrderStatus.PENDING, SubStatus.VENDOR_VOUCHER_FETCHED, "Vouchers fetched")
    return _finish(order, cause=SubStatus.PARTIAL)


@transaction.atomic
def _vendor_rejected(order_id: int, reason: str) -> Order:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order
    _fail_items(order.items.filter(status=ItemStatus.PENDING), reason)
    order.failure_reason = reason[:500]
    order.save(update_fields=["failure_reason", "updated_at"])
    return _finish(order, cause=SubStatus.VENDOR_ORDER_FAILED)


@transaction.atomic
def _retry_later(order_id: int, reason: str) -> Order:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order
    now = timezone.now()
    order.attempts += 1
    order.failure_reason = reason[:500]
    delay = retry_delay_seconds(attempts=order.attempts)
    due = now + timedelta(seconds=delay)
    if order.retry_deadline is not None and due > order.retry_deadline:
        order.save(update_fields=["attempts", "failure_reason", "updated_at"])
        _fail_items(order.items.filter(status=ItemStatus.PENDING), f"retry window closed: {reason}")
        return _finish(order, cause=SubStatus.REPROCESS_EXPIRED)
    order.next_attempt_at = due
    order.leased_until = None
    order.save(
        update_fields=[
            "attempts",
            "failure_reason",
            "next_attempt_at",
            "leased_until",
            "updated_at",
        ]
    )
    order = _move(
        order,
        OrderStatus.PENDING,
        SubStatus.PENDING_REPROCESS,
        f"{reason}; attempt {order.attempts + 1} in {delay}s",
    )
    enqueue_on_commit(order_fulfil_task, order.pk, run_after=due)
    return order


def _finish(order: Order, *, cause: SubStatus | None) -> Order:
    """Close an order from its items' states (caller holds the row lock)."""
    _fail_items(order.items.filter(status=ItemStatus.PENDING), "not delivered")
    counts = order.items.aggregate(
        delivered=Count("pk", filter=Q(status=ItemStatus.DELIVERED)),
        from_vendor=Count("pk", filter=~Q(vendor_ref="")),
    )
    delivered = counts["delivered"]
    if delivered == order.quantity:
        if not holds_stock(order.product_kind):
            sub = SubStatus.COMPLETED
        elif counts["from_vendor"]:
            sub = SubStatus.VENDOR_VOUCHER_FETCHED
        else:
            sub = SubStatus.INVENTORY_FULFILLED
        status, event = OrderStatus.DELIVERED, WebhookEvent.ORDER_DELIVERED
        note = f"All {delivered} unit(s) delivered"
    elif delivered > 0:
        sub = cause if cause is not None else SubStatus.PARTIAL
        status, event = OrderStatus.PARTIALLY_DELIVERED, WebhookEvent.ORDER_PARTIALLY_DELIVERED
        note = f"{delivered} of {order.quantity} unit(s) delivered"
    else:
        sub = (
            cause
            if cause in (SubStatus.REPROCESS_EXPIRED, SubStatus.VENDOR_ORDER_FAILED)
            else SubStatus.VENDOR_ORDER_FAILED
        )
        status, event = OrderStatus.FAILED, WebhookEvent.ORDER_FAILED
        note = f"Nothing delivered: {order.failure_reason or 'no unit could be supplied'}"
    order.next_attempt_at = order.leased_until = None
    order.save(update_fields=["next_attempt_at", "leased_until", "updated_at"])
    if delivered and is_link_order(order):
        # The links commit with the delivery: no delivered LINK order is without them.
        made = gift_links_create(orders=[order], now=timezone.now())
        if status == OrderStatus.DELIVERED:
            order = _move(
                order,
                OrderStatus.PENDING,
                SubStatus.GV_LINK_PENDING,
                f"Creating {made} gift link(s)",
            )
            sub, note = SubStatus.GV_LINK_UNCLAIMED, f"{note} as gift links"
    order = _move(order, status, sub, note)
    webhook_event_emit(order=order, event=event)
    if status != OrderStatus.DELIVERED:
        order = refund_schedule(order_id=order.pk, actor=SYSTEM)
    return order


# --- Mobile top-ups ------------------------------------------------------------


def _fulfil_topup(order: Order) -> Order:
    operator = get_operator(order=order)
    key = idempotency_key(order=order)
    for item in _pending_items(order):
        try:
            if item.recharge_status == RechargeStatus.PENDING:
                result = operator.submit(
                    idempotency_key=f"{key}-u{item.position}",
                    phone=order.recipient_phone,
                    amount=order.denomination,
                    currency=order.currency,
                )
                if not _recharge_update(order.pk, item.pk, result):
                    return Order.objects.get(pk=order.pk)
                if result.status == RechargeStatus.FAILED:
                    continue
                ref = result.ref
            else:
                ref = item.vendor_ref
            if not _recharge_update(order.pk, item.pk, operator.confirm(ref=ref)):
                return Order.objects.get(pk=order.pk)
        except VendorRejected as exc:
            failed = RechargeResult(item.vendor_ref, RechargeStatus.FAILED, str(exc))
            if not _recharge_update(order.pk, item.pk, failed):
                return Order.objects.get(pk=order.pk)
        except VendorTransientError as exc:
            return _retry_later(order.pk, str(exc))
        except Exception as exc:  # an operator bug must not lose the order
            logger.exception("Operator adapter failed for order %s", order.pk)
            return _retry_later(order.pk, f"operator adapter error: {type(exc).__name__}")
    return _finish_open(order.pk)


@transaction.atomic
def _recharge_update(order_id: int, item_id: int, result: RechargeResult) -> bool:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return False
    item = OrderItem.objects.get(pk=item_id, order=order)
    if item.status != ItemStatus.PENDING:
        return True
    item.vendor_ref = result.ref
    item.recharge_status = result.status
    fields = ["vendor_ref", "recharge_status", "updated_at"]
    if result.status == RechargeStatus.RECHARGED:
        item.status = ItemStatus.DELIVERED
        item.delivered_at = timezone.now()
        fields += ["status", "delivered_at"]
    elif result.status == RechargeStatus.FAILED:
        item.status = ItemStatus.FAILED
        item.failure_reason = result.reason[:500] or "rejected by the operator"
        fields += ["status", "failure_reason"]
    item.save(update_fields=fields)
    return True


@transaction.atomic
def _finish_open(order_id: int) -> Order:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return order
    failed = order.items.filter(status=ItemStatus.FAILED).first()
    if failed is not None and not order.failure_reason:
        order.failure_reason = failed.failure_reason
        order.save(update_fields=["failure_reason", "updated_at"])
    return _finish(order, cause=SubStatus.VENDOR_ORDER_FAILED if failed else None)


# --- Staff actions -------------------------------------------------------------


@transaction.atomic
def order_cancel(*, order_id: int, actor: Actor, reason: str) -> Order:
    """Cancel an order nothing of which was delivered, allocated or bought; refund it."""
    if not (reason or "").strip():
        raise ValidationFailed("Say why the order is cancelled.", field="reason")
    order = _locked(order_id)
    now = timezone.now()
    if not is_open(order.status):
        raise OrderNotCancellable(
            f"Order {order.pk} is {order.status} and can no longer be cancelled."
        )
    if order.items.filter(progressed_items_q()).exists():
        raise OrderNotCancellable(
            f"Order {order.pk} already has delivered or allocated units; it cannot be cancelled."
        )
    if order.vendor_order_ref:
        raise OrderNotCancellable(
            f"Order {order.pk} was already bought from the vendor; it cannot be cancelled."
        )
    if is_leased(leased_until=order.leased_until, at=now):
        raise OrderNotCancellable(
            f"Order {order.pk} is being fulfilled right now; try again in a minute."
        )
    order.items.filter(status=ItemStatus.PENDING).update(status=ItemStatus.CANCELLED)
    order.items.filter(recharge_status=RechargeStatus.PENDING).update(
        recharge_status=RechargeStatus.CANCELLED
    )
    order.next_attempt_at = order.leased_until = None
    order.failure_reason = f"Cancelled: {reason.strip()}"[:500]
    order.save(update_fields=["next_attempt_at", "leased_until", "failure_reason", "updated_at"])
    order_transition(
        order_id=order.pk,
        status=OrderStatus.CANCELLED,
        sub_status=SubStatus.NOT_REFUNDED,
        actor=actor,
        note=reason,
    )
    audit_record(action="order.cancel", actor=actor, order_id=order.pk, reason=reason)
    return refund_schedule(order_id=order.pk, actor=actor)


@transaction.atomic
def order_retry(*, order_id: int, actor: Actor, note: str = "") -> Order:
    """Run fulfilment again now for a pending order that waits for a retry or is stuck."""
    order = _locked(order_id)
    now = timezone.now()
    if not is_retryable(status=order.status, sub_status=order.sub_status):
        raise OrderNotRetryable(
            f"Order {order.pk} is {order.status}/{order.sub_status}; only pending orders "
            "waiting for a retry or for an admin can be retried."
        )
    if is_leased(leased_until=order.leased_until, at=now):
        raise OrderNotRetryable(
            f"Order {order.pk} is being fulfilled right now; retry only if it stays stuck."
        )
    order.next_attempt_at = now
    order.leased_until = None  # a lease that ran out: its run is presumed dead
    order.retry_deadline = now + timedelta(seconds=settings.FULFILMENT_RETRY_WINDOW_SECONDS)
    order.save(update_fields=["next_attempt_at", "leased_until", "retry_deadline", "updated_at"])
    label = f"Retry requested by {actor.label}" + (f": {note}" if note else "")
    if order.status == OrderStatus.PENDING and order.sub_status != SubStatus.PROCESSING:
        order = order_transition(
            order_id=order.pk,
            status=OrderStatus.PENDING,
            sub_status=SubStatus.PROCESSING,
            actor=actor,
            note=label,
        )
    audit_record(
        action="order.retry",
        actor=actor,
        order_id=order.pk,
        reason=note,
        data={"sub_status": order.sub_status},
    )
    enqueue_on_commit(order_fulfil_task, order.pk)
    return order
