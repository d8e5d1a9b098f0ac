"""Fulfilment: inventory first, then the vendor; retries, cancellation, admin retry.

A run of `order_fulfil` is a sequence of short transactions, each locking the
order row and re-checking its state, with every vendor call in between and
OUTSIDE any transaction (a slow vendor never holds a lock):

1. begin: take a lease on the order (`leased_until = now + TASK_LEASE_SECONDS`);
   a second run while the lease holds (a duplicated task) does nothing, and so
   does a run before the scheduled retry is due (`next_attempt_at`).
2. inventory: allocate AVAILABLE, unexpired vouchers (earliest expiry first,
   SKIP LOCKED), one per missing unit; a voucher is on at most one item
   (OrderItem.voucher is one-to-one).
3. vendor: the units still missing are marked with the order's idempotency key
   before the vendor is called, the vendor order reference is stored as soon
   as the vendor answers, and fetched vouchers are stored encrypted, idempotent
   on their fingerprint. A crash anywhere resumes from what was persisted and
   the vendor, keyed by the same idempotency key, never sells twice.
4. finish: DELIVERED, PARTIALLY_DELIVERED or FAILED, the webhook event, and
   the refund of the undelivered value (see refunds).

Every run ends by giving the lease back: the order is finished, or waits for
its retry. Transient vendor errors retry with exponential backoff until the
retry window closes; a killed worker's order is picked up by the recovery sweep
once its lease has run out. The task `order_fulfil_task` runs `order_fulfil`.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from orders.enums import (
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    RechargeStatus,
    SubStatus,
    VoucherSource,
    WebhookEvent,
)
from orders.errors import OrderNotCancellable, OrderNotRetryable, ValidationFailed
from orders.models import Order, OrderItem, Voucher
from orders.rules import (
    holds_stock,
    is_leased,
    is_open,
    is_retryable,
    is_terminal,
    progressed_items_q,
)
from orders.selectors.inventory import allocatable_vouchers
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.backoff import backoff_seconds
from orders.services.inventory import voucher_fingerprint
from orders.services.refunds import refund_schedule
from orders.services.transitions import order_transition
from orders.services.webhooks import webhook_event_emit
from orders.tasks import enqueue_on_commit
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
    return Order.objects.select_for_update(no_key=True).get(pk=order_id)


def _move(order: Order, status: OrderStatus, sub_status: SubStatus, note: str = "") -> Order:
    return order_transition(
        order_id=order.pk, status=status, sub_status=sub_status, actor=SYSTEM, note=note
    )


# --- The run -----------------------------------------------------------------


@task
def order_fulfil_task(order_id: int) -> None:
    """Fulfil a placed order (inventory first, then the vendor)."""
    order_fulfil(order_id=order_id)


def order_fulfil(*, order_id: int) -> Order:
    """Deliver every unit once (inventory, then vendor); safe to run twice or concurrently.

    Not one transaction on purpose: vendor calls happen between short locked
    steps, never inside a transaction.
    """
    order = _begin(order_id)
    if order is None:
        return Order.objects.get(pk=order_id)
    if not holds_stock(order.product_kind):
        return _fulfil_topup(order)
    if sandbox_scenario(order) is None:
        _allocate_inventory(order_id)
    return _fulfil_from_vendor(order_id)


@transaction.atomic
def _begin(order_id: int) -> Order | None:
    order = _locked(order_id)
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


@transaction.atomic
def _allocate_inventory(order_id: int) -> None:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return
    if order.vendor_order_ref or order.items.exclude(vendor_ref="").exists():
        return  # the vendor already has the missing units; inventory must not double them
    missing = [item for item in _pending_items(order) if item.voucher_id is None]
    if not missing:
        return
    vouchers = list(
        allocatable_vouchers(
            product_id=order.product_id, denomination=order.denomination
        ).select_for_update(skip_locked=True, no_key=True)[: len(missing)]
    )
    now = timezone.now()
    for item, voucher in zip(missing, vouchers, strict=False):
        _deliver(item, voucher, now)
    if vouchers:
        audit_record(
            action="order.allocate",
            actor=SYSTEM,
            order_id=order.pk,
            data={"voucher_ids": [v.pk for v in vouchers], "source": "inventory"},
        )
    if len(vouchers) == len(missing):
        _finish(order, cause=None)


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
    order = _engage_vendor(order_id)
    if order is None:
        return Order.objects.get(pk=order_id)
    key = idempotency_key(order=order)
    product = order.product
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
                quantity=order.items.exclude(vendor_ref="").count(),
            )
            order = _vendor_order_created(order_id, vendor_order)
            if order is None:
                return Order.objects.get(pk=order_id)
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
def _engage_vendor(order_id: int) -> Order | None:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        return None
    key = idempotency_key(order=order)
    # Persist which units the vendor is asked for BEFORE asking: a retry asks
    # for the same units with the same key instead of buying more.
    order.items.filter(status=ItemStatus.PENDING, voucher__isnull=True, vendor_ref="").update(
        vendor_ref=key, updated_at=timezone.now()
    )
    if not order.items.filter(status=ItemStatus.PENDING).exists():
        _finish(order, cause=None)
        return None
    if order.vendor_order_ref:
        return _move(order, OrderStatus.PENDING, SubStatus.VENDOR_ORDER_CREATED, "Resuming")
    return _move(
        order,
        OrderStatus.PENDING,
        SubStatus.VENDOR_ORDER_PENDING,
        f"{order.items.exclude(vendor_ref='').count()} unit(s) ordered from the vendor",
    )


@transaction.atomic
def _vendor_order_created(order_id: int, vendor_order: VendorOrder) -> Order | None:
    order = _locked(order_id)
    if order.status != OrderStatus.PENDING:
        logger.warning("Vendor order %s arrived for closed order %s", vendor_order.ref, order_id)
        return None
    if not order.vendor_order_ref:
        order.vendor_order_ref = vendor_order.ref
        order.save(update_fields=["vendor_order_ref", "updated_at"])
    asked = list(order.items.exclude(vendor_ref="").order_by("position"))
    for item in asked[vendor_order.accepted :]:
        if item.status == ItemStatus.PENDING:
            _fail_item(item, vendor_order.rejected_reason or "rejected by the vendor")
    return _move(
        order,
        OrderStatus.PENDING,
        SubStatus.VENDOR_ORDER_CREATED,
        f"Vendor order {vendor_order.ref}: {vendor_order.accepted} unit(s) accepted",
    )


def _fail_item(item: OrderItem, reason: str) -> None:
    item.status = ItemStatus.FAILED
    item.failure_reason = reason[:500]
    fields = ["status", "failure_reason", "updated_at"]
    if item.recharge_status in (RechargeStatus.PENDING, RechargeStatus.DELIVERED):
        item.recharge_status = RechargeStatus.FAILED
        fields.append("recharge_status")
    item.save(update_fields=fields)


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
    for item in waiting:
        _fail_item(item, "the vendor delivered fewer vouchers than it accepted")
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
    for item in _pending_items(order):
        _fail_item(item, reason)
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
        for item in _pending_items(order):
            _fail_item(item, f"retry window closed: {reason}")
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
    for item in _pending_items(order):
        _fail_item(item, "not delivered")
    delivered = order.items.filter(status=ItemStatus.DELIVERED).count()
    if delivered == order.quantity:
        if not holds_stock(order.product_kind):
            sub = SubStatus.COMPLETED
        elif order.items.exclude(vendor_ref="").exists():
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
    Order.objects.filter(pk=order.pk).update(next_attempt_at=None, leased_until=None)
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
