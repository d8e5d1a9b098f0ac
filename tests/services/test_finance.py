"""Refund decisions: maker-checker above the second-approval limit, hold and reject
with a reason, bulk decisions, and the refund queue selector."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders.enums import RefundStatus, SubStatus, WalletEntryKind
from orders.errors import RefundAlreadyApproved, RefundNotDue, ValidationFailed
from orders.models import AuditEvent, Order, RefundReview, Wallet, WalletEntry
from orders.selectors.finance import RefundQueueFilters, refund_queue
from orders.services.actors import Actor
from orders.services.finance import refund_decide, refund_decide_many
from tests.factories import UserFactory, refundable_order


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.REFUND_SECOND_APPROVAL_LIMIT = Decimal("500.00")


def finance_actor(name: str) -> Actor:
    return Actor.for_user(UserFactory(username=name, role="finance"))


def _balance(order: Order) -> Decimal:
    assert order.wallet_id is not None
    return Wallet.objects.get(pk=order.wallet_id).balance


def _refunds(order: Order) -> int:
    return WalletEntry.objects.filter(order=order, kind=WalletEntryKind.REFUND).count()


# --- Maker-checker ---------------------------------------------------------------


@pytest.mark.django_db
def test_below_the_limit_one_approval_refunds_once():
    order = refundable_order(amount="25.00")
    before = _balance(order)

    outcome = refund_decide(
        order_id=order.pk, actor=finance_actor("fin-a"), decision="APPROVE", note=""
    )

    assert outcome.refunded and outcome.summary == f"Order {order.pk}: refunded 25.00 USD"
    order.refresh_from_db()
    assert order.refund_status == RefundStatus.REFUNDED
    assert _balance(order) == before + Decimal("25.00")
    assert _refunds(order) == 1
    assert AuditEvent.objects.filter(order_id=order.pk, action="refund.approve").count() == 1
    assert AuditEvent.objects.filter(order_id=order.pk, action="order.refund").count() == 1


@pytest.mark.django_db
def test_above_the_limit_two_different_users_are_needed():
    order = refundable_order(amount="600.00")
    first, second = finance_actor("fin-a"), finance_actor("fin-b")
    before = _balance(order)

    waiting = refund_decide(order_id=order.pk, actor=first, decision="APPROVE", note="ok")
    assert waiting.waiting_for_second_approver and not waiting.refunded
    assert waiting.summary == f"Order {order.pk}: waiting for a second approver"
    assert _balance(order) == before and _refunds(order) == 0

    with pytest.raises(RefundAlreadyApproved, match="you already approved"):
        refund_decide(order_id=order.pk, actor=first, decision="APPROVE", note="again")
    assert _refunds(order) == 0
    assert RefundReview.objects.filter(order=order).count() == 1

    paid = refund_decide(order_id=order.pk, actor=second, decision="APPROVE", note="checked")
    assert paid.refunded and paid.amount == Decimal("600.00")
    assert _balance(order) == before + Decimal("600.00")
    assert _refunds(order) == 1

    with pytest.raises(RefundNotDue):
        refund_decide(order_id=order.pk, actor=finance_actor("fin-c"), decision="APPROVE", note="")
    assert _refunds(order) == 1


@pytest.mark.django_db
def test_an_approval_before_a_hold_no_longer_counts():
    order = refundable_order(amount="600.00")
    first, second = finance_actor("fin-a"), finance_actor("fin-b")
    refund_decide(order_id=order.pk, actor=first, decision="APPROVE", note="")
    refund_decide(order_id=order.pk, actor=second, decision="HOLD", note="client disputes")

    again = refund_decide(order_id=order.pk, actor=second, decision="APPROVE", note="resolved")
    assert again.waiting_for_second_approver
    assert _refunds(order) == 0

    paid = refund_decide(order_id=order.pk, actor=first, decision="APPROVE", note="")
    assert paid.refunded and _refunds(order) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("decision", ["HOLD", "REJECT"])
def test_hold_and_reject_need_a_note_and_are_audited(decision):
    order = refundable_order()
    actor = finance_actor("fin-a")

    with pytest.raises(ValidationFailed, match="needs a note"):
        refund_decide(order_id=order.pk, actor=actor, decision=decision, note="   ")
    assert not RefundReview.objects.filter(order=order).exists()

    outcome = refund_decide(order_id=order.pk, actor=actor, decision=decision, note="fraud check")
    assert outcome.ok and not outcome.refunded
    review = RefundReview.objects.get(order=order)
    assert (review.decision, review.note, review.user_id) == (
        decision,
        "fraud check",
        actor.user_id,
    )
    event = AuditEvent.objects.get(order_id=order.pk, action=f"refund.{decision.lower()}")
    assert event.reason == "fraud check"
    order.refresh_from_db()
    assert order.refund_status == RefundStatus.NOT_REFUNDED
    assert _refunds(order) == 0


@pytest.mark.django_db
def test_a_decision_needs_a_refund_waiting():
    order = refundable_order()
    Order.objects.filter(pk=order.pk).update(refund_status=RefundStatus.NONE)
    with pytest.raises(RefundNotDue):
        refund_decide(order_id=order.pk, actor=finance_actor("fin-a"), decision="APPROVE", note="")


@pytest.mark.django_db
def test_bulk_decision_one_bad_order_does_not_block_the_others():
    good_1, good_2, done = refundable_order(), refundable_order(), refundable_order()
    Order.objects.filter(pk=done.pk).update(refund_status=RefundStatus.REFUNDED)

    outcomes = refund_decide_many(
        order_ids=[good_1.pk, done.pk, 999_999, good_2.pk],
        actor=finance_actor("fin-a"),
        decision="APPROVE",
        note="batch",
    )

    by_order = {o.order_id: o for o in outcomes}
    assert [o.order_id for o in outcomes] == [good_1.pk, done.pk, 999_999, good_2.pk]
    assert by_order[good_1.pk].refunded and by_order[good_2.pk].refunded
    assert not by_order[done.pk].ok
    assert by_order[done.pk].summary == f"Order {done.pk}: no refund is waiting for a decision"
    assert not by_order[999_999].ok
    assert _refunds(good_1) == 1 and _refunds(good_2) == 1


# --- Refund queue selector --------------------------------------------------------


@pytest.mark.django_db
def test_queue_hides_held_and_rejected_unless_asked_and_totals_per_currency():
    actor = finance_actor("fin-a")
    old = refundable_order(amount="600.00", placed_days_ago=10)
    new = refundable_order(amount="700.00", placed_days_ago=1)
    euro = refundable_order(amount="50.00", currency="EUR", placed_days_ago=5)
    held = refundable_order(amount="25.00")
    refund_decide(order_id=held.pk, actor=actor, decision="HOLD", note="ask client")
    refund_decide(order_id=old.pk, actor=actor, decision="APPROVE", note="")

    queue = refund_queue(filters=RefundQueueFilters())
    assert [o.pk for o in queue.page.items] == [old.pk, euro.pk, new.pk]  # oldest first
    pending = queue.page.items[0]
    review = (getattr(pending, "latest_decision", None), getattr(pending, "latest_reviewer", None))
    assert review == ("APPROVE", "fin-a")
    totals = {t.currency: (t.total, t.orders) for t in queue.totals}
    assert totals == {"EUR": (Decimal("50.00"), 1), "USD": (Decimal("1300.00"), 2)}

    everything = refund_queue(filters=RefundQueueFilters(include_stopped=True))
    assert held.pk in [o.pk for o in everything.page.items]

    assert [o.pk for o in refund_queue(filters=RefundQueueFilters(currency="eur")).page.items] == [
        euro.pk
    ]
    older = refund_queue(filters=RefundQueueFilters(older_than_days=3)).page.items
    assert [o.pk for o in older] == [old.pk, euro.pk]
    ranged = refund_queue(
        filters=RefundQueueFilters(amount_min=Decimal("100"), amount_max=Decimal("650"))
    )
    assert [o.pk for o in ranged.page.items] == [old.pk]
    by_reason = refund_queue(filters=RefundQueueFilters(sub_status=SubStatus.PARTIAL))
    assert by_reason.page.items == [] and by_reason.totals == []


@pytest.mark.django_db
def test_only_the_newest_review_takes_an_order_out_of_the_queue():
    """Above the second-approval limit (so one approval pays nothing): a hold
    followed by an approval is back in the queue (and in its totals); an
    approval followed by a hold is out; reviews at the same moment: the later one."""
    held_then_approved = refundable_order(amount="1000.00")
    approved_then_held = refundable_order(amount="2000.00")
    same_moment = refundable_order(amount="4000.00")
    refund_decide(
        order_id=held_then_approved.pk, actor=finance_actor("fin-a"), decision="HOLD", note="ask"
    )
    refund_decide(
        order_id=held_then_approved.pk, actor=finance_actor("fin-a"), decision="APPROVE", note=""
    )
    refund_decide(
        order_id=approved_then_held.pk, actor=finance_actor("fin-a"), decision="APPROVE", note=""
    )
    refund_decide(
        order_id=approved_then_held.pk, actor=finance_actor("fin-b"), decision="HOLD", note="wait"
    )
    refund_decide(
        order_id=same_moment.pk, actor=finance_actor("fin-a"), decision="REJECT", note="no"
    )
    refund_decide(
        order_id=same_moment.pk, actor=finance_actor("fin-a"), decision="APPROVE", note=""
    )
    moment = RefundReview.objects.filter(order=same_moment).latest("id").created_at
    RefundReview.objects.filter(order=same_moment).update(created_at=moment)

    queue = refund_queue(filters=RefundQueueFilters())
    assert [o.pk for o in queue.page.items] == [held_then_approved.pk, same_moment.pk]
    assert [(t.currency, t.total, t.orders) for t in queue.totals] == [
        ("USD", Decimal("5000.00"), 2)
    ]
    everything = refund_queue(filters=RefundQueueFilters(include_stopped=True))
    assert len(everything.page.items) == 3
    assert everything.totals[0].total == Decimal("7000.00")


@pytest.mark.django_db
def test_queue_pages_by_keyset_oldest_first():
    orders = [refundable_order(placed_days_ago=days) for days in (5, 4, 3)]

    first = refund_queue(filters=RefundQueueFilters(), limit=2)
    assert [o.pk for o in first.page.items] == [orders[0].pk, orders[1].pk]
    assert first.page.next_cursor
    second = refund_queue(filters=RefundQueueFilters(), cursor=first.page.next_cursor, limit=2)
    assert [o.pk for o in second.page.items] == [orders[2].pk]
    assert second.page.next_cursor is None
    assert second.totals == first.totals  # totals cover the whole filtered queue


# --- Concurrency (PostgreSQL) -----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_move_money_once():
    order = refundable_order(amount="600.00")
    before = _balance(order)
    # No role: an earlier transactional test may have flushed the groups; the
    # service checks no permission (the view does).
    actors = [Actor.for_user(UserFactory(username=name)) for name in ("fin-a", "fin-b")]
    barrier = threading.Barrier(len(actors))
    outcomes, errors = [], []
    lock = threading.Lock()

    def approve(actor: Actor) -> None:
        try:
            barrier.wait(timeout=10)
            result = refund_decide(order_id=order.pk, actor=actor, decision="APPROVE", note="")
            with lock:
                outcomes.append(result)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert sorted(o.refunded for o in outcomes) == [False, True]
    assert _refunds(order) == 1
    assert _balance(order) == before + Decimal("600.00")
    order.refresh_from_db()
    assert order.refund_status == RefundStatus.REFUNDED
    assert RefundReview.objects.filter(order=order, decision="APPROVE").count() == 2
