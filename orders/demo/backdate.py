"""Back-dating: the services stamp "now"; the demo's rows move to when they happened.

Each seeded order's timeline (its StatusChange rows, in the order the services
wrote them) is re-timed from its planned placing time with the delays of
STEP_DELAYS, and everything dated by those steps follows with bulk UPDATEs:
the order's placed/delivered/refunded times, its debit and refund entries, its
items, its vouchers and the finance reviews. An open order keeps the services'
own schedule (next attempt, retry window), shifted by the same amount as its
placing time, so the worker resumes it as if it had been placed then.

Audit events are not back-dated: each is sealed with an HMAC over its content
(created_at included) and chained to the one before, the database refuses to
update them, and their checkpoints are already written outside it. The audit
trail shows when the demo was seeded.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from django.conf import settings

from orders.enums import InventoryStatus, OrderStatus, SubStatus, VoucherSource
from orders.models import (
    ImportBatch,
    Order,
    OrderItem,
    RefundReview,
    StatusChange,
    Voucher,
    WalletEntry,
)
from orders.rules import is_open, is_terminal

S, U = OrderStatus, SubStatus
SECOND = timedelta(seconds=1)
BATCH = 500
# How long after the previous step each step of a timeline happens.
STEP_DELAYS: dict[tuple[OrderStatus, SubStatus], timedelta] = {
    (S.PENDING, U.PROCESSING): timedelta(seconds=2),
    (S.PENDING, U.VENDOR_ORDER_PENDING): timedelta(seconds=1),
    (S.PENDING, U.VENDOR_ORDER_CREATED): timedelta(seconds=40),
    (S.PENDING, U.VENDOR_VOUCHER_FETCHED): timedelta(minutes=3),
    (S.PENDING, U.PENDING_REPROCESS): timedelta(seconds=5),
    (S.DELIVERED, U.INVENTORY_FULFILLED): timedelta(seconds=1),
    (S.DELIVERED, U.VENDOR_VOUCHER_FETCHED): timedelta(seconds=1),
    (S.DELIVERED, U.COMPLETED): timedelta(minutes=2),
    (S.FAILED, U.VENDOR_ORDER_FAILED): timedelta(minutes=1),
    (S.FAILED, U.REPROCESS_EXPIRED): timedelta(seconds=5),
}
# Steps people or partners take, in minutes: (fewest, most).
HUMAN_MINUTES: dict[SubStatus, tuple[int, int]] = {
    U.GV_LINK_CLAIMED: (5, 90),
    U.GV_LINK_UNCLAIMED: (5, 90),
    U.RECONCILED: (30, 60),
    U.NOT_REFUNDED: (1, 20),  # an agent cancels
}
FINANCE_MINUTES = (20, 90)  # a refund approved by finance
RETRY_MINUTES = (2, 10)  # an agent asks for a retry
AUTOMATIC_REFUND = timedelta(minutes=1)
# An open order's schedule: its next attempt, its lease and the end of its retry window.
SCHEDULE = ("next_attempt_at", "leased_until", "retry_deadline")


@dataclass(frozen=True)
class _Step:
    to: tuple[str, str]
    came_from: str
    by_user: bool


class Backdates:
    """What the demo dated "now" and when it really happened; `apply` writes it."""

    def __init__(self, *, now: datetime, seed: int) -> None:
        self.now = now
        self.seed = seed
        self.orders: dict[int, datetime] = {}
        self.entries: dict[int, datetime] = {}
        self.batches: dict[int, datetime] = {}

    def order(self, order_id: int, *, placed_at: datetime) -> None:
        self.orders[order_id] = placed_at

    def entries_at(self, entries: Iterable[WalletEntry], *, when: datetime) -> None:
        for entry in entries:
            self.entries[entry.pk] = when

    def batch(self, batch: ImportBatch, *, when: datetime) -> None:
        self.batches[batch.pk] = when

    def apply(self) -> None:
        """Bulk UPDATEs, batches first: an order's vouchers then take its delivery time."""
        self._batches()
        self._orders()
        WalletEntry.objects.bulk_update(
            [WalletEntry(pk=pk, created_at=when) for pk, when in self.entries.items()],
            ["created_at"],
            batch_size=BATCH,
        )

    def _batches(self) -> None:
        for batch_id, when in self.batches.items():
            ImportBatch.objects.filter(pk=batch_id).update(
                created_at=when - timedelta(minutes=5), completed_at=when
            )
            Voucher.objects.filter(batch_id=batch_id).update(created_at=when, updated_at=when)
            Voucher.objects.filter(batch_id=batch_id, status=InventoryStatus.BLOCKED).update(
                updated_at=when + timedelta(days=1)
            )

    def _orders(self) -> None:
        ids = list(self.orders)
        orders = {order.pk: order for order in Order.objects.filter(pk__in=ids)}
        changes: dict[int, list[StatusChange]] = {pk: [] for pk in ids}
        for change in StatusChange.objects.filter(order_id__in=ids).order_by("order_id", "id"):
            changes[change.order_id].append(change)
        reviews: dict[int, list[RefundReview]] = {}
        for review in RefundReview.objects.filter(order_id__in=ids).order_by("order_id", "id"):
            reviews.setdefault(review.order_id, []).append(review)
        finished: dict[int, datetime] = {}
        for pk, order in orders.items():
            rows = changes[pk]
            approved = any(r.decision == RefundReview.Decision.APPROVE for r in reviews.get(pk, []))
            times = self._timeline(order, rows, approved=approved)
            for change, when in zip(rows, times, strict=True):
                change.created_at = when
            finish = next((t for c, t in zip(rows, times, strict=True) if _closes(c)), times[-1])
            finished[pk] = finish
            self._order(order, rows, times)
            self._reviews(reviews.get(pk, []), order=order, finish=finish)
        Order.objects.bulk_update(
            orders.values(),
            ["placed_at", "updated_at", "delivered_at", "refunded_at", *SCHEDULE],
            batch_size=BATCH,
        )
        StatusChange.objects.bulk_update(
            [change for rows in changes.values() for change in rows], ["created_at"], BATCH
        )
        RefundReview.objects.bulk_update(
            [review for rows in reviews.values() for review in rows], ["created_at"], BATCH
        )
        self._units(orders, finished)

    def _timeline(
        self, order: Order, rows: list[StatusChange], *, approved: bool
    ) -> list[datetime]:
        """When each row happened: from the planned placing time, step by step; an
        open order's steps all end before now."""
        rng = random.Random(f"{self.seed}-{order.client_id}-{order.reference_code}")
        start = when = self.orders[order.pk]
        times = [start]
        for previous, row in pairwise(rows):
            step = _Step(
                to=(row.to_status, row.to_sub_status),
                came_from=previous.to_sub_status,
                by_user=row.actor_user_id is not None,
            )
            when += self._delay(step, rng, approved=approved)
            times.append(when)
        latest = self.now - timedelta(minutes=1)
        if times[-1] > latest and latest > start:
            scale = (latest - start) / (times[-1] - start)
            times = [start + (t - start) * scale for t in times]
        return times

    def _delay(self, step: _Step, rng: random.Random, *, approved: bool) -> timedelta:
        status, sub = OrderStatus(step.to[0]), SubStatus(step.to[1])
        if sub == U.REFUNDED:
            return _minutes(rng, FINANCE_MINUTES) if approved else AUTOMATIC_REFUND
        if sub == U.PROCESSING and step.came_from == U.PENDING_REPROCESS:
            if step.by_user:
                return _minutes(rng, RETRY_MINUTES)
            # The next attempt: in the demo's story the last one, when the window closes.
            return timedelta(seconds=settings.FULFILMENT_RETRY_WINDOW_SECONDS)
        if sub in HUMAN_MINUTES:
            return _minutes(rng, HUMAN_MINUTES[sub])
        return STEP_DELAYS.get((status, sub), SECOND)

    def _order(self, order: Order, rows: list[StatusChange], times: list[datetime]) -> None:
        placed_at = self.orders[order.pk]
        shift = placed_at - order.placed_at
        order.placed_at = placed_at
        order.updated_at = times[-1]
        if order.delivered_at is not None:
            order.delivered_at = _first(rows, times, lambda c: c.to_status == S.DELIVERED)
        if order.refunded_at is not None:
            order.refunded_at = _first(rows, times, lambda c: c.to_sub_status == U.REFUNDED)
        if is_open(order.status):
            # The services' schedule, as if they had run at the planned time.
            if order.next_attempt_at is not None:
                order.next_attempt_at += shift
            if order.leased_until is not None:
                order.leased_until += shift
            if order.retry_deadline is not None:
                order.retry_deadline += shift
        elif order.retry_deadline is not None:
            started = _first(rows, times, lambda c: c.to_sub_status == U.PROCESSING)
            window = timedelta(seconds=settings.FULFILMENT_RETRY_WINDOW_SECONDS)
            order.retry_deadline = (started or placed_at) + window
        if order.transaction_id is not None:
            self.entries[order.transaction_id] = placed_at
        if order.refund_entry_id is not None and order.refunded_at is not None:
            self.entries[order.refund_entry_id] = order.refunded_at

    def _reviews(self, reviews: list[RefundReview], *, order: Order, finish: datetime) -> None:
        """Finance decisions between the finish and the refund (or before now)."""
        end = order.refunded_at or min(finish + timedelta(minutes=45), self.now)
        for n, review in enumerate(reviews, start=1):
            review.created_at = finish + (end - finish) * n / len(reviews)

    def _units(self, orders: dict[int, Order], finished: dict[int, datetime]) -> None:
        items = list(
            OrderItem.objects.filter(order_id__in=list(orders)).only(
                "pk", "order_id", "status", "voucher_id", "delivered_at", "updated_at"
            )
        )
        delivered_at: dict[int, datetime] = {}
        for item in items:
            order = orders[item.order_id]
            done = finished[item.order_id]
            item.updated_at = done if is_terminal(order.status) else order.updated_at
            if item.delivered_at is not None:
                item.delivered_at = done
            if item.voucher_id is not None:
                delivered_at[item.voucher_id] = done
        OrderItem.objects.bulk_update(items, ["updated_at", "delivered_at"], batch_size=BATCH)
        vouchers = list(
            Voucher.objects.filter(pk__in=list(delivered_at)).only(
                "pk", "source", "created_at", "updated_at", "allocated_at", "delivered_at"
            )
        )
        for voucher in vouchers:
            when = delivered_at[voucher.pk]
            voucher.updated_at = voucher.allocated_at = voucher.delivered_at = when
            if voucher.source == VoucherSource.VENDOR:
                voucher.created_at = when
        Voucher.objects.bulk_update(
            vouchers, ["created_at", "updated_at", "allocated_at", "delivered_at"], BATCH
        )


def _minutes(rng: random.Random, bounds: tuple[int, int]) -> timedelta:
    return timedelta(minutes=rng.randint(*bounds))


def _closes(change: StatusChange) -> bool:
    return is_terminal(change.to_status)


def _first(
    rows: list[StatusChange], times: list[datetime], test: Callable[[StatusChange], bool]
) -> datetime | None:
    return next((t for c, t in zip(rows, times, strict=True) if test(c)), None)
