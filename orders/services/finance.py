"""Finance decisions on refunds: approve, hold or reject, with maker-checker.

A refund up to REFUND_SECOND_APPROVAL_LIMIT is paid on one approval; above
it, money moves only once two different users have approved since the last
hold or reject. The order row is locked for the whole decision, so two
approvers deciding at the same moment are serialised and the second one sees
the first one's approval; `refund_approve` then pays exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from orders.enums import RefundStatus
from orders.errors import (
    DomainError,
    InvalidEnumValue,
    NotFound,
    RefundAlreadyApproved,
    RefundNotDue,
    ValidationFailed,
)
from orders.models import Order, RefundReview
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.refunds import refund_approve, refund_due

Decision = RefundReview.Decision


@dataclass(frozen=True)
class RefundOutcome:
    """What one decision did to one order, in words a finance user can read."""

    order_id: int
    decision: str
    ok: bool
    message: str
    refunded: bool = False
    waiting_for_second_approver: bool = False
    amount: Decimal | None = None
    currency: str = ""

    @property
    def summary(self) -> str:
        return f"Order {self.order_id}: {self.message}"


def _decision(value: object) -> Decision:
    try:
        return Decision(str(value).upper())
    except ValueError:
        raise InvalidEnumValue(field="decision", value=value, valid=Decision.values) from None


@transaction.atomic
def refund_decide(*, order_id: int, actor: Actor, decision: object, note: str) -> RefundOutcome:
    """Record one finance decision on a refund awaiting approval; pay when approvals suffice.

    Hold and reject need a note. An approval above REFUND_SECOND_APPROVAL_LIMIT
    pays only when a different user approved after the last hold or reject.
    """
    choice = _decision(decision)
    note = (note or "").strip()
    if actor.user_id is None:
        raise ValidationFailed("A refund decision is made by a signed-in user.", field="actor")
    order = Order.objects.select_for_update(no_key=True).filter(pk=order_id).first()
    if order is None:
        raise NotFound("no such order")
    if order.refund_status != RefundStatus.NOT_REFUNDED:
        raise RefundNotDue("no refund is waiting for a decision")
    currency = order.wallet_currency or order.currency
    # Judge the larger of what is owed now and what was scheduled (and will be paid),
    # so a stale snapshot cannot slip a large refund past the second approver.
    amount = max(refund_due(order=order), order.refund_amount)

    if choice in (Decision.HOLD, Decision.REJECT):
        if not note:
            verb = "hold" if choice == Decision.HOLD else "reject"
            raise ValidationFailed(f"a {verb} needs a note saying why", field="note")
        RefundReview.objects.create(order=order, decision=choice, user=actor.user, note=note[:500])
        audit_record(
            action=f"refund.{choice.lower()}",
            actor=actor,
            order_id=order.pk,
            reason=note,
            data={"amount": str(order.refund_amount), "currency": currency},
        )
        done = "held" if choice == Decision.HOLD else "rejected"
        return RefundOutcome(
            order_id=order.pk,
            decision=choice,
            ok=True,
            message=f"refund {done}",
            amount=order.refund_amount,
            currency=currency,
        )

    # Approvals count from the last hold or reject on; the row lock keeps ids in order.
    last_stop = (
        order.refund_reviews.filter(decision__in=[Decision.HOLD, Decision.REJECT])
        .order_by("-id")
        .first()
    )
    approvals = order.refund_reviews.filter(decision=Decision.APPROVE)
    if last_stop is not None:
        approvals = approvals.filter(id__gt=last_stop.pk)
    if approvals.filter(user_id=actor.user_id).exists():
        raise RefundAlreadyApproved(
            "you already approved; the second approval must come from a different user"
        )
    first_approver = approvals.select_related("user").order_by("id").first()
    RefundReview.objects.create(order=order, decision=Decision.APPROVE, user=actor.user, note=note)
    limit = settings.REFUND_SECOND_APPROVAL_LIMIT
    pays = amount <= limit or first_approver is not None
    audit_record(
        action="refund.approve",
        actor=actor,
        order_id=order.pk,
        reason=note,
        data={
            "amount": str(order.refund_amount),
            "currency": currency,
            "second_approval_limit": str(limit),
            "first_approver_id": first_approver.user_id if first_approver else None,
            "pays": pays,
        },
    )
    if not pays:
        return RefundOutcome(
            order_id=order.pk,
            decision=choice,
            ok=True,
            message="waiting for a second approver",
            waiting_for_second_approver=True,
            amount=order.refund_amount,
            currency=currency,
        )
    paid = refund_approve(order_id=order.pk, actor=actor, note=note)
    return RefundOutcome(
        order_id=order.pk,
        decision=choice,
        ok=True,
        message=f"refunded {paid.refund_amount} {currency}",
        refunded=True,
        amount=paid.refund_amount,
        currency=currency,
    )


def refund_decide_many(
    *, order_ids: Iterable[int], actor: Actor, decision: object, note: str
) -> list[RefundOutcome]:
    """The same decision on several orders, each in its own transaction; one refusal
    does not stop the others."""
    outcomes = []
    for order_id in dict.fromkeys(order_ids):
        try:
            outcomes.append(
                refund_decide(order_id=order_id, actor=actor, decision=decision, note=note)
            )
        except DomainError as refusal:
            outcomes.append(
                RefundOutcome(
                    order_id=order_id, decision=str(decision), ok=False, message=refusal.message
                )
            )
    return outcomes
