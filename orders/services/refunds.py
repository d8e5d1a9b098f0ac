"""Refunds: the undelivered value of an order goes back to its wallet exactly once.

What is owed is pro rata of what the wallet was charged:
``wallet_amount × undelivered units / quantity``, rounded half-up to the cent
(the full wallet_amount when nothing was delivered, so no cent is lost to
rounding). Up to AUTO_REFUND_LIMIT (wallet currency) the refund is paid at
once; above it the order waits, NOT_REFUNDED, for a finance user's approval.

Exactly once: the order row is locked and its refund_status checked before
any money moves; the partial unique constraint (one REFUND entry per order)
is the backstop.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orders.enums import ItemStatus, OrderStatus, RefundStatus, SubStatus, WebhookEvent
from orders.errors import RefundNotDue
from orders.models import Order
from orders.rules import ZERO, is_refundable, prorata
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.transitions import order_transition
from orders.services.wallets import wallet_refund
from orders.services.webhooks import webhook_event_emit


def undelivered_units(*, order: Order) -> int:
    """Units the client paid for and did not get (an item not DELIVERED)."""
    return order.items.filter(~Q(status=ItemStatus.DELIVERED)).count()


def refund_due(*, order: Order) -> Decimal:
    """The undelivered value of a finished order, in the wallet's currency."""
    if not is_refundable(order.status):
        return ZERO
    return prorata(
        charged=order.wallet_amount,
        undelivered=undelivered_units(order=order),
        quantity=order.quantity,
    )


def _pay(*, order: Order, actor: Actor, note: str) -> Order:
    # Caller holds the order row lock and has checked refund_status.
    assert order.wallet_id is not None
    entry = wallet_refund(
        wallet_id=order.wallet_id,
        amount=order.refund_amount,
        actor=actor,
        order=order,
        note=note or f"Refund of order {order.pk} ({order.reference_code})",
    )
    order.refund_status = RefundStatus.REFUNDED
    order.refunded_at = timezone.now()
    order.refund_entry = entry
    order.save(update_fields=["refund_status", "refunded_at", "refund_entry", "updated_at"])
    order = order_transition(
        order_id=order.pk,
        status=OrderStatus(order.status),
        sub_status=SubStatus.REFUNDED,
        actor=actor,
        note=f"Refunded {entry.amount} {order.wallet_currency}",
    )
    audit_record(
        action="order.refund",
        actor=actor,
        order_id=order.pk,
        reason=note,
        data={"amount": str(entry.amount), "entry_id": entry.pk},
    )
    webhook_event_emit(order=order, event=WebhookEvent.ORDER_REFUNDED)
    return order


@transaction.atomic
def refund_schedule(*, order_id: int, actor: Actor) -> Order:
    """Owe the undelivered value of a finished order; pay it now if ≤ AUTO_REFUND_LIMIT."""
    order = Order.objects.select_for_update(no_key=True).get(pk=order_id)
    if order.refund_status != RefundStatus.NONE or not is_refundable(order.status):
        return order  # already scheduled or paid, or nothing can be owed yet
    due = refund_due(order=order)
    if due <= 0:
        return order
    order.refund_status = RefundStatus.NOT_REFUNDED
    order.refund_amount = due
    order.save(update_fields=["refund_status", "refund_amount", "updated_at"])
    if due <= settings.AUTO_REFUND_LIMIT:
        return _pay(order=order, actor=actor, note="Automatic refund of the undelivered value")
    audit_record(
        action="order.refund_pending",
        actor=actor,
        order_id=order.pk,
        data={"amount": str(due), "limit": str(settings.AUTO_REFUND_LIMIT)},
    )
    return order


@transaction.atomic
def refund_approve(*, order_id: int, actor: Actor, note: str = "") -> Order:
    """Pay a refund awaiting approval; a second approval of the same refund changes nothing."""
    order = Order.objects.select_for_update(no_key=True).get(pk=order_id)
    if order.refund_status == RefundStatus.REFUNDED:
        return order
    if order.refund_status != RefundStatus.NOT_REFUNDED:
        raise RefundNotDue(f"Order {order.pk} has no refund waiting for approval.")
    return _pay(order=order, actor=actor, note=note)
