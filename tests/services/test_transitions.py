"""The order state machine: only listed moves happen, each leaves one timeline row."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from orders.enums import OrderStatus as S
from orders.enums import SubStatus as U
from orders.errors import IllegalTransition
from orders.models import Order, StatusChange
from orders.services.actors import Actor
from orders.services.transitions import ALLOWED, order_transition
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

ILLEGAL = [
    # Backwards out of a terminal state.
    ((S.DELIVERED, U.INVENTORY_FULFILLED), (S.PENDING, U.PROCESSING)),
    ((S.FAILED, U.VENDOR_ORDER_FAILED), (S.DELIVERED, U.VENDOR_VOUCHER_FETCHED)),
    ((S.CANCELLED, U.REFUNDED), (S.CANCELLED, U.NOT_REFUNDED)),
    ((S.CANCELLED, U.REFUNDED), (S.PLACED, U.INITIAL)),
    # Refunding what was never charged back, or delivered.
    ((S.PLACED, U.INITIAL), (S.FAILED, U.REFUNDED)),
    ((S.DELIVERED, U.COMPLETED), (S.DELIVERED, U.REFUNDED)),
    # Skipping fulfilment to a partial delivery.
    ((S.PLACED, U.INITIAL), (S.PARTIALLY_DELIVERED, U.PARTIAL)),
    # A status with a sub_status that does not belong to it.
    ((S.PENDING, U.PROCESSING), (S.PENDING, U.INVENTORY_FULFILLED)),
    ((S.PENDING, U.PROCESSING), (S.DELIVERED, U.PENDING_REPROCESS)),
]


def _order(state: tuple[S, U]) -> Order:
    return OrderFactory(status=state[0], sub_status=state[1])


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_move_is_refused_and_writes_nothing(current, target, system_actor):
    order = _order(current)

    with pytest.raises(IllegalTransition) as excinfo:
        order_transition(
            order_id=order.pk, status=target[0], sub_status=target[1], actor=system_actor
        )

    order.refresh_from_db()
    assert (order.status, order.sub_status) == current
    assert not StatusChange.objects.filter(order=order).exists()
    assert excinfo.value.current == current and excinfo.value.target == target
    assert f"{current[0]}/{current[1]}" in excinfo.value.message


def test_legal_move_writes_one_timeline_row_with_actor_and_note():
    user = get_user_model().objects.create(username="agent.smith", is_staff=True)
    actor = Actor.for_user(user)
    order = _order((S.PLACED, U.INITIAL))

    moved = order_transition(
        order_id=order.pk,
        status=S.CANCELLED,
        sub_status=U.NOT_REFUNDED,
        actor=actor,
        note="Customer asked to cancel",
    )

    assert (moved.status, moved.sub_status) == (S.CANCELLED, U.NOT_REFUNDED)
    order.refresh_from_db()
    assert (order.status, order.sub_status) == (S.CANCELLED, U.NOT_REFUNDED)
    change = StatusChange.objects.get(order=order)
    assert (change.from_status, change.from_sub_status) == (S.PLACED, U.INITIAL)
    assert (change.to_status, change.to_sub_status) == (S.CANCELLED, U.NOT_REFUNDED)
    assert change.actor_user == user and change.actor_label == "user:agent.smith"
    assert change.note == "Customer asked to cancel"


def test_same_state_is_a_no_op(system_actor):
    order = _order((S.PENDING, U.PROCESSING))

    again = order_transition(
        order_id=order.pk, status=S.PENDING, sub_status=U.PROCESSING, actor=system_actor
    )

    assert (again.status, again.sub_status) == (S.PENDING, U.PROCESSING)
    assert not StatusChange.objects.filter(order=order).exists()


def test_a_full_lifecycle_leaves_a_readable_timeline(system_actor):
    order = _order((S.PLACED, U.INITIAL))
    path = [
        (S.PENDING, U.PROCESSING),
        (S.PENDING, U.VENDOR_ORDER_PENDING),
        (S.PENDING, U.VENDOR_ORDER_CREATED),
        (S.FAILED, U.VENDOR_ORDER_FAILED),
        (S.FAILED, U.REFUNDED),
        (S.FAILED, U.RECONCILED),
    ]

    for status, sub_status in path:
        order_transition(
            order_id=order.pk, status=status, sub_status=sub_status, actor=system_actor
        )

    timeline = list(
        StatusChange.objects.filter(order=order).values_list("to_status", "to_sub_status")
    )
    assert timeline == path


def test_delivery_stamps_delivered_at_once(system_actor):
    order = _order((S.PENDING, U.PROCESSING))

    delivered = order_transition(
        order_id=order.pk, status=S.DELIVERED, sub_status=U.INVENTORY_FULFILLED, actor=system_actor
    )
    first = delivered.delivered_at
    reconciled = order_transition(
        order_id=order.pk, status=S.DELIVERED, sub_status=U.RECONCILED, actor=system_actor
    )

    assert first is not None and reconciled.delivered_at == first


def test_no_terminal_state_leads_back_to_an_open_one():
    open_statuses = {S.PLACED, S.PENDING}
    for (status, _), targets in ALLOWED.items():
        if status in open_statuses:
            continue
        assert not {target for target in targets if target[0] in open_statuses}, status


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_moves_write_one_timeline_row():
    """The row lock makes racing workers see each other: one moves, the rest no-op."""
    order = _order((S.PLACED, U.INITIAL))
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def move() -> None:
        try:
            barrier.wait(timeout=10)
            order_transition(
                order_id=order.pk,
                status=S.PENDING,
                sub_status=U.PROCESSING,
                actor=Actor.system("worker"),
            )
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=move) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert StatusChange.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert (order.status, order.sub_status) == (S.PENDING, U.PROCESSING)
