"""The order state machine: one table of allowed moves, one transition function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.enums import OrderStatus as S
from orders.enums import SubStatus as U
from orders.errors import IllegalTransition
from orders.models import Order, StatusChange
from orders.services.actors import Actor

State = tuple[S, U]


def _states(status: S, *subs: U) -> frozenset[State]:
    return frozenset((status, sub) for sub in subs)


PLACED = _states(S.PLACED, U.INITIAL)
IN_PROGRESS = _states(
    S.PENDING,
    U.PROCESSING,
    U.VENDOR_ORDER_PENDING,
    U.VENDOR_ORDER_CREATED,
    U.VENDOR_VOUCHER_FETCHED,
    U.PENDING_REPROCESS,
    U.BULK_LIMIT_EXCEEDED,
    U.GV_LINK_PENDING,
)
DELIVERED = _states(
    S.DELIVERED,
    U.INVENTORY_FULFILLED,
    U.VENDOR_VOUCHER_FETCHED,
    U.COMPLETED,
    U.GV_LINK_UNCLAIMED,
    U.GV_LINK_CLAIMED,
)
# Terminal states that may still owe the client money.
PARTIAL_OPEN = _states(
    S.PARTIALLY_DELIVERED, U.PARTIAL, U.VENDOR_ORDER_FAILED, U.REPROCESS_EXPIRED, U.NOT_REFUNDED
)
FAILED_OPEN = _states(S.FAILED, U.VENDOR_ORDER_FAILED, U.REPROCESS_EXPIRED, U.NOT_REFUNDED)
CANCELLED_OPEN = _states(S.CANCELLED, U.NOT_REFUNDED)
RECONCILED_OK = {
    status: frozenset({(status, U.RECONCILED)})
    for status in (S.DELIVERED, S.PARTIALLY_DELIVERED, S.FAILED, S.CANCELLED)
}


def _refunded(status: S) -> frozenset[State]:
    return frozenset({(status, U.REFUNDED)})


# From each group of states, the groups it may move to. Anything else is illegal.
_MOVES: list[tuple[frozenset[State], frozenset[State]]] = [
    (PLACED, IN_PROGRESS | CANCELLED_OPEN | FAILED_OPEN | DELIVERED),
    (IN_PROGRESS, IN_PROGRESS | DELIVERED | PARTIAL_OPEN | FAILED_OPEN | CANCELLED_OPEN),
    (DELIVERED, DELIVERED | RECONCILED_OK[S.DELIVERED]),
    (PARTIAL_OPEN, PARTIAL_OPEN | _refunded(S.PARTIALLY_DELIVERED)),
    (FAILED_OPEN, FAILED_OPEN | _refunded(S.FAILED)),
    (CANCELLED_OPEN, _refunded(S.CANCELLED)),
    (_refunded(S.PARTIALLY_DELIVERED), RECONCILED_OK[S.PARTIALLY_DELIVERED]),
    (_refunded(S.FAILED), RECONCILED_OK[S.FAILED]),
    (_refunded(S.CANCELLED), RECONCILED_OK[S.CANCELLED]),
]

ALLOWED: dict[State, frozenset[State]] = {}
for _sources, _targets in _MOVES:
    for _source in _sources:
        ALLOWED[_source] = ALLOWED.get(_source, frozenset()) | (_targets - {_source})


def is_allowed(current: State, target: State) -> bool:
    return target in ALLOWED.get(current, frozenset())


@transaction.atomic
def order_transition(
    *, order_id: int, status: S, sub_status: U, actor: Actor, note: str = ""
) -> Order:
    """Move an order to (status, sub_status) if the table allows it.

    Locks the order row, refuses illegal moves with IllegalTransition, and
    writes a StatusChange in the same transaction. Moving to the state the
    order is already in changes nothing (so a repeated step is harmless).
    """
    order = Order.objects.select_for_update(no_key=True).get(pk=order_id)
    return order_transition_held(
        order=order, status=status, sub_status=sub_status, actor=actor, note=note
    )


def _step(order: Order, target: State, actor: Actor, note: str, now: datetime) -> StatusChange:
    """Check one move and apply it to `order` in memory; the StatusChange to write."""
    current: State = (S(order.status), U(order.sub_status))
    if not is_allowed(current, target):
        raise IllegalTransition(order_id=order.pk, current=current, target=target)
    order.status, order.sub_status = target
    if target[0] == S.DELIVERED and order.delivered_at is None:
        order.delivered_at = now
    return StatusChange(
        order=order,
        from_status=current[0],
        from_sub_status=current[1],
        to_status=target[0],
        to_sub_status=target[1],
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        note=note[:500],
        created_at=now,
    )


def order_transition_held(
    *, order: Order, status: S, sub_status: U, actor: Actor, note: str = ""
) -> Order:
    """`order_transition` for an order row the caller has locked in its transaction
    (no second read of the row); same table, same StatusChange."""
    target: State = (S(status), U(sub_status))
    if (S(order.status), U(order.sub_status)) == target:
        return order
    had_delivered_at = order.delivered_at is not None
    change = _step(order, target, actor, note, timezone.now())
    change.save(force_insert=True)
    fields = ["status", "sub_status", "updated_at"]
    if not had_delivered_at and order.delivered_at is not None:
        fields.append("delivered_at")
    order.save(update_fields=fields)
    return order


def orders_transition_held(
    *,
    orders: Sequence[Order],
    steps: Sequence[tuple[S, U, Callable[[Order], str]]],
    actor: Actor,
    **fields: Any,
) -> None:
    """Move many locked orders through the same `steps` with one INSERT of their
    StatusChanges and one UPDATE of the rows (set-based fulfilment).

    Each order must start in the same state; every move is checked against the
    table. `fields` are further columns set to the same value on every row.
    """
    if not orders:
        return
    now = timezone.now()
    start = {(order.status, order.sub_status) for order in orders}
    if len(start) != 1:
        raise ValueError("orders_transition_held moves orders that start in one state")
    changes = [
        _step(order, (S(status), U(sub)), actor, note(order), now)
        for order in orders
        for status, sub, note in steps
    ]
    StatusChange.objects.bulk_create(changes)
    final = orders[0]
    values: dict[str, Any] = {
        "status": final.status,
        "sub_status": final.sub_status,
        "updated_at": now,
        **fields,
    }
    if final.status == S.DELIVERED:
        values["delivered_at"] = Coalesce("delivered_at", Value(now))
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(**values)
    for order in orders:
        order.updated_at = now
        for name, value in fields.items():
            setattr(order, name, value)
