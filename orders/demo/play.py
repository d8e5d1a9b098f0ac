"""Each planned demo order acted out through the services, in this process.

The order is placed with `order_create` as the client's API credential would,
then fulfilled by `order_fulfil` synchronously, the simulated vendor scripted
(`scripted`) to deliver, reject, answer "pending", fill part of the order or
stop mid-call; agents cancel (`order_cancel`) and retry (`order_retry`),
finance decides refunds above the automatic limit (`refund_decide`). Orders of
URL products are LINK orders: fulfilment makes their gift links, and about half
are claimed by their recipient (`gift_link_reveal`, as the claim page does;
Disney+ links are PROTECTED, their recipients having entered the e-mailed code).
Steps no service takes yet (a vendor statement matched) go through
`order_transition`, the one function every status change goes through.
"""

from __future__ import annotations

from contextlib import suppress

from django.utils import timezone

from orders.crypto import gift_link_token
from orders.demo.catalog import ProductSpec
from orders.demo.people import DemoClient, Staff
from orders.demo.plan import (
    AFTER_A_RETRY,
    CANCELLED,
    DELIVERED,
    FAILED,
    HELD,
    PAID,
    PARTIAL,
    RECONCILED,
    REJECTED,
    RETRY_REQUESTED,
    STALLED,
    TWO_APPROVALS,
    WAITING,
    PlannedOrder,
)
from orders.enums import (
    DeliveryMethod,
    DeliveryType,
    OrderStatus,
    ProductKind,
    RefundStatus,
    SubStatus,
)
from orders.models import GiftLink, Order, Product
from orders.services.actors import Actor
from orders.services.finance import refund_decide
from orders.services.fulfilment import order_cancel, order_fulfil, order_retry
from orders.services.gift_links import gift_link_reveal
from orders.services.placing import order_create
from orders.services.transitions import order_transition
from orders.vendors import simulated
from orders.vendors.simulated import SimulatedCrash, scripted

RECIPIENT = Actor(label="link-recipient", ip_address="198.51.100.7", user_agent="Demo phone")
CANCEL_REASON = "Cancelled on the client's request."
RETRY_NOTE = "The client asked for news; trying the vendor again."
HOLD_NOTE = "Waiting for the vendor's credit note before paying this back."
APPROVE_NOTE = "Undelivered value checked against the vendor's statement."
SECOND_APPROVE_NOTE = "Second approval: amount above the single-approver limit."
RECONCILED_NOTE = "Matched with the vendor statement."


def order_place(plan: PlannedOrder, demo: DemoClient, product: Product) -> Order:
    """Place the planned order as the client's API credential would (InsufficientFunds
    when the wallet cannot pay it)."""
    is_topup = plan.product.kind == ProductKind.MOBILE_TOPUP
    placed = order_create(
        client=demo.client,
        actor=demo.api,
        credential=demo.credential,
        product_id=product.pk,
        denomination=str(plan.denomination),
        quantity=plan.quantity,
        reference_code=plan.reference_code,
        customer=plan.customer,
        recipient_phone=plan.customer.phone if is_topup else "",
        delivery_method=DeliveryMethod.LINK if _is_link(plan.product) else DeliveryMethod.CODE,
    )
    return placed.order


def order_play(plan: PlannedOrder, order: Order, *, staff: Staff) -> None:
    """Move the placed order to its planned outcome, the way it would get there."""
    kind, pk = plan.outcome.kind, order.pk
    if kind in (DELIVERED, RECONCILED):
        _deliver(plan, pk, staff=staff)
    elif kind == FAILED:
        if plan.outcome.variant == REJECTED:
            _fulfil(pk, simulated.FAIL)
        else:
            _expire(pk)
        _settle(plan, pk, staff=staff)
    elif kind == CANCELLED:
        if plan.outcome.variant == AFTER_A_RETRY:
            _fulfil(pk, simulated.TIMEOUT)
        order_cancel(order_id=pk, actor=staff.support, reason=CANCEL_REASON)
        _settle(plan, pk, staff=staff)
    elif kind == PARTIAL:
        _fulfil(pk, simulated.PARTIAL)
        _settle(plan, pk, staff=staff)
    elif kind == WAITING:
        order_fulfil(order_id=pk)  # the slow vendor answers "pending"
    elif kind == RETRY_REQUESTED:
        order_fulfil(order_id=pk)
        order_retry(order_id=pk, actor=staff.support, note=RETRY_NOTE)
    elif kind == STALLED:
        # Left in flight under its lease, as a killed worker leaves it.
        with suppress(SimulatedCrash):
            _fulfil(pk, simulated.CRASH)
    # PLACED: left for the worker.


def _fulfil(order_id: int, scenario: str) -> Order:
    with scripted(scenario):
        return order_fulfil(order_id=order_id)


def _deliver(plan: PlannedOrder, order_id: int, *, staff: Staff) -> None:
    order = _fulfil(order_id, simulated.DELAYED)
    if order.status != OrderStatus.DELIVERED:
        return
    if _is_link(plan.product) and plan.outcome.link_claimed:
        for link in GiftLink.objects.filter(order_id=order_id):
            # A PROTECTED link's recipient entered the e-mailed code first.
            gift_link_reveal(
                token=gift_link_token(link.token_seed), actor=RECIPIENT, code_verified=True
            )
    if plan.outcome.kind == RECONCILED:
        order_transition(
            order_id=order_id,
            status=OrderStatus.DELIVERED,
            sub_status=SubStatus.RECONCILED,
            actor=staff.finance,
            note=RECONCILED_NOTE,
        )


def _is_link(product: ProductSpec) -> bool:
    return product.delivery_type == DeliveryType.URL


def _expire(order_id: int) -> None:
    """The vendor never answers: one attempt, then the retry window closes."""
    with scripted(simulated.TIMEOUT):
        order_fulfil(order_id=order_id)
        # The hour of retries passes: the next attempt is due and the window closed.
        now = timezone.now()
        Order.objects.filter(pk=order_id).update(next_attempt_at=now, retry_deadline=now)
        order_fulfil(order_id=order_id)


def _settle(plan: PlannedOrder, order_id: int, *, staff: Staff) -> None:
    """Finance on a refund above the automatic limit: approve it (a second approver
    above the second-approval limit), or put it on hold, or leave it waiting."""
    order = Order.objects.get(pk=order_id)
    if order.refund_status != RefundStatus.NOT_REFUNDED:
        return
    refund = plan.outcome.refund
    if refund in (PAID, TWO_APPROVALS):
        first = refund_decide(
            order_id=order_id, actor=staff.finance, decision="APPROVE", note=APPROVE_NOTE
        )
        if first.waiting_for_second_approver:
            refund_decide(
                order_id=order_id, actor=staff.admin, decision="APPROVE", note=SECOND_APPROVE_NOTE
            )
    elif refund == HELD:
        refund_decide(order_id=order_id, actor=staff.finance, decision="HOLD", note=HOLD_NOTE)
