"""Voucher reveal: the only place voucher secrets are decrypted for a person or client.

Decryption happens only for delivered vouchers of delivered (or partially
delivered) orders, and every reveal writes an AuditEvent, from the dashboard
and the API alike, before the plaintext is handed back: called in autocommit
(as requests run) the event is committed when the function returns, so it is
committed before a code leaves the server. No function here opens a
transaction or a savepoint of its own: a refusal (a domain error) is raised
before anything is written, so a caller inside its own transaction that
catches it finds that transaction intact. A staff user reveals at most
REVEAL_RATE_PER_HOUR vouchers per clock hour, counted in the shared cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache

from orders import metrics
from orders.crypto import Sealed, gift_link_token, unseal
from orders.enums import DeliveryMethod, DeliveryType, InventoryStatus, OrderStatus
from orders.errors import NotFound, RateLimited, VoucherNotRevealable
from orders.models import Order, Voucher
from orders.selectors.orders import (
    ItemRow,
    OrderRead,
    order_item_chunks,
    order_read,
    order_voucher_ids,
)
from orders.services.actors import Actor
from orders.services.audit import AuditEntry, audit_record, audit_records

REVEALABLE_ORDER_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED})
REVEALABLE_VOUCHER_STATUSES = frozenset({InventoryStatus.DELIVERED, InventoryStatus.COMPLETED})
# A reveal refused by the hourly limit asks to try again in a minute; the message
# names the real wait (up to the next clock hour).
REVEAL_RETRY_AFTER_SECONDS = 60
# Where a gift link's page is served (starship/urls.py; redacted in logs, orders/logs.py).
GIFT_LINK_PATH = "/gift/{token}/"


@dataclass(frozen=True)
class RevealedVoucher:
    """Plaintext of one voucher. Never log it, never cache it."""

    voucher_id: int
    card_number: str | None
    pin_code: str | None
    claim_url: str | None
    voucher_reference_number: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"<RevealedVoucher {self.voucher_id}>"


class StoredVoucher(Protocol):
    """A voucher as read from the database: a Voucher, or a selector's SealedVoucher."""

    @property
    def pk(self) -> int: ...

    @property
    def card_number(self) -> Sealed | None: ...

    @property
    def pin_code(self) -> Sealed | None: ...

    @property
    def claim_url(self) -> Sealed | None: ...

    @property
    def voucher_reference_number(self) -> Sealed | None: ...

    @property
    def expires_at(self) -> datetime | None: ...


def _open(value: Sealed | None) -> str | None:
    return unseal(value) if value is not None else None


def _revealed(voucher: StoredVoucher, *, delivery_type: str) -> RevealedVoucher:
    with_pin = delivery_type == DeliveryType.CODE_WITH_PIN
    return RevealedVoucher(
        voucher_id=voucher.pk,
        card_number=_open(voucher.card_number),
        pin_code=_open(voucher.pin_code) if with_pin else None,
        claim_url=_open(voucher.claim_url),
        voucher_reference_number=_open(voucher.voucher_reference_number),
        expires_at=voucher.expires_at,
    )


def delivered_vouchers(*, order: Order) -> list[Voucher]:
    """The vouchers delivered on an order's items (none unless it is delivered)."""
    if order.status not in REVEALABLE_ORDER_STATUSES:
        return []
    return list(
        Voucher.objects.filter(
            order_item__order=order, status__in=list(REVEALABLE_VOUCHER_STATUSES)
        ).order_by("order_item__position")
    )


def _reveal_budget_spent(user_id: int) -> int | None:
    """Count one reveal for the user in this clock hour; the minutes until the next
    hour when the limit is already reached, else None."""
    window = int(time.time() // 3600)
    # The key the dashboard counted under before the limit moved here: counts survive a deploy.
    key = f"dashboard:reveal-rate:{user_id}:{window}"
    cache.add(key, 0, timeout=3700)
    try:
        used = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=3700)
        used = 1
    if used > settings.REVEAL_RATE_PER_HOUR:
        return max(1, int(((window + 1) * 3600 - time.time()) // 60) + 1)
    return None


def _check_reveal_budget(*, actor: Actor) -> None:
    """A staff user reveals at most REVEAL_RATE_PER_HOUR vouchers per clock hour;
    every attempt counts, and one over the limit is refused with RateLimited."""
    minutes = _reveal_budget_spent(actor.user_id or 0)
    if minutes is None:
        return
    raise RateLimited(
        f"You have reached the limit of {settings.REVEAL_RATE_PER_HOUR} reveals per hour. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an admin.",
        retry_after=REVEAL_RETRY_AFTER_SECONDS,
    )


def voucher_reveal(*, voucher_id: int, actor: Actor, reason: str) -> RevealedVoucher:
    """Decrypt one delivered voucher for a staff user, within the user's hourly
    reveal limit; audited with the reason."""
    _check_reveal_budget(actor=actor)
    voucher = Voucher.objects.select_related("order_item__order").filter(pk=voucher_id).first()
    item = getattr(voucher, "order_item", None) if voucher else None
    if voucher is None or item is None:
        raise NotFound("No delivered voucher with that id.")
    revealed = _reveal_audited(
        voucher=voucher,
        order=item.order,
        actor=actor,
        action="voucher.reveal",
        reason=reason,
        data={"channel": "dashboard"},
    )
    metrics.VOUCHER_REVEALS.inc()
    return revealed


def _reveal_audited(
    *, voucher: Voucher, order: Order, actor: Actor, action: str, reason: str, data: dict[str, Any]
) -> RevealedVoucher:
    """One delivered voucher of a delivered order decrypted, and its audit event."""
    if (
        order.status not in REVEALABLE_ORDER_STATUSES
        or voucher.status not in REVEALABLE_VOUCHER_STATUSES
    ):
        raise VoucherNotRevealable("Only delivered vouchers of delivered orders can be revealed.")
    revealed = _revealed(voucher, delivery_type=order.delivery_type)
    audit_record(
        action=action,
        actor=actor,
        order_id=order.pk,
        voucher_id=voucher.pk,
        reason=reason,
        data=data,
    )
    return revealed


def gift_link_voucher_reveal(
    *, voucher: Voucher, order: Order, actor: Actor, action: str, gift_link_id: int
) -> RevealedVoucher:
    """Decrypt the voucher of a gift link for the recipient who opened it; audited
    (`action`: the claim, or a later view), the token never in the event."""
    return _reveal_audited(
        voucher=voucher,
        order=order,
        actor=actor,
        action=action,
        reason="Opened by the gift link's recipient",
        data={"channel": "gift_link", "gift_link_id": gift_link_id},
    )


def _audit_api_read(
    *, order: Order, actor: Actor, voucher_ids: list[int], links: bool = False
) -> None:
    # One INSERT with no model instance (audit_records): the API's hottest write.
    audit_records(
        [
            AuditEntry(
                action="gift_link.read_api" if links else "voucher.read_api",
                actor=actor,
                order_id=order.pk,
                reason="GET /api/v1/orders/{id}",
                data={"channel": "api", "voucher_ids": voucher_ids},
            )
        ]
    )


def order_vouchers_reveal(*, order: Order, actor: Actor) -> list[RevealedVoucher]:
    """Decrypt an order's delivered vouchers for its API client; one audit event per read."""
    vouchers = delivered_vouchers(order=order)
    if not vouchers:
        return []
    revealed = [_revealed(v, delivery_type=order.delivery_type) for v in vouchers]
    _audit_api_read(order=order, actor=actor, voucher_ids=[v.pk for v in vouchers])
    return revealed


def gift_link_claim_url(*, token_seed: str, base_url: str) -> str:
    """A gift link's claim URL: on PUBLIC_BASE_URL when set, else on `base_url`
    (the host the API was called on). The token is rebuilt with the server's key
    (orders.crypto.gift_link_token); it is stored nowhere."""
    base = (settings.PUBLIC_BASE_URL or base_url).rstrip("/")
    return base + GIFT_LINK_PATH.format(token=gift_link_token(token_seed))


def _expiry(item: ItemRow, *, links: bool) -> datetime | None:
    """A listed voucher's `expires_at`: its gift link's for a LINK order."""
    if links:
        return item.link.expires_at if item.link is not None else None
    return item.voucher.expires_at if item.voucher is not None else None


def _withheld(items: Iterable[ItemRow], *, links: bool = False) -> list[RevealedVoucher]:
    """The items' delivered vouchers with every secret withheld (None): nothing is
    decrypted, so nothing is audited. A LINK order's claim URL is withheld too."""
    return [
        RevealedVoucher(
            voucher_id=item.voucher.id,
            card_number=None,
            pin_code=None,
            claim_url=None,
            voucher_reference_number=None,
            expires_at=_expiry(item, links=links),
        )
        for item in items
        if item.voucher is not None and item.voucher.status in REVEALABLE_VOUCHER_STATUSES
    ]


def _linked(item: ItemRow, *, base_url: str) -> RevealedVoucher:
    """A LINK order's unit as its partner sees it: the gift link, never the code."""
    assert item.voucher is not None
    link = item.link
    return RevealedVoucher(
        voucher_id=item.voucher.id,
        card_number=None,
        pin_code=None,
        claim_url=(
            gift_link_claim_url(token_seed=link.token_seed, base_url=base_url) if link else None
        ),
        voucher_reference_number=None,
        expires_at=_expiry(item, links=True),
    )


def _decrypt(
    items: Iterable[ItemRow],
    *,
    audited: frozenset[int],
    delivery_type: str,
    link_base_url: str | None = None,
) -> list[RevealedVoucher]:
    """The items' delivered vouchers decrypted: only those the audit event names.
    With `link_base_url` (a LINK order) their gift links instead, nothing decrypted."""
    return [
        _revealed(item.voucher, delivery_type=delivery_type)
        if link_base_url is None
        else _linked(item, base_url=link_base_url)
        for item in items
        if item.voucher is not None
        and item.voucher.id in audited
        and item.voucher.status in REVEALABLE_VOUCHER_STATUSES
    ]


@dataclass(frozen=True)
class OrderReveal:
    """An order read by its API client, its delivered vouchers already audited.

    `items` and `vouchers` are the first chunk (decrypted before the audit event
    was written); when not `complete`, `rest()` reads and decrypts the others a
    chunk at a time, so a large order is never held decrypted all at once. Only
    vouchers whose ids the audit event names are ever decrypted. A `withheld`
    read decrypts nothing and audits nothing: its vouchers carry no secret.
    """

    read: OrderRead
    vouchers: list[RevealedVoucher]
    audited: frozenset[int]
    withheld: bool = False
    link_base_url: str | None = None  # a LINK order: its vouchers are gift links

    @property
    def order(self) -> Order:
        return self.read.order

    @property
    def items(self) -> list[ItemRow]:
        return self.read.items

    @property
    def complete(self) -> bool:
        return self.read.complete

    def rest(self) -> Iterator[tuple[list[ItemRow], list[RevealedVoucher]]]:
        """The items after the first chunk with their decrypted vouchers, chunk by chunk."""
        delivery_type = self.order.delivery_type
        if self.withheld:
            shown = self.order.status in REVEALABLE_ORDER_STATUSES
            links = _is_link_order(self.order)
            for items in order_item_chunks(read=self.read, with_vouchers=shown):
                yield items, _withheld(items, links=links) if shown else []
            return
        for items in order_item_chunks(read=self.read, with_vouchers=bool(self.audited)):
            yield (
                items,
                _decrypt(
                    items,
                    audited=self.audited,
                    delivery_type=delivery_type,
                    link_base_url=self.link_base_url,
                ),
            )


def _is_link_order(order: Order) -> bool:
    return order.delivery_method == DeliveryMethod.LINK


def order_detail_reveal(
    *,
    client_id: int,
    order_id: int,
    actor: Actor,
    with_secrets: bool = True,
    link_base_url: str = "",
) -> OrderReveal | None:
    """One of the client's orders for its API client, or None: its delivered vouchers
    (DELIVERED / PARTIALLY_DELIVERED orders only) decrypted and audited in one event;
    without `with_secrets` (a credential lacking vouchers:read) they are listed with
    their secrets withheld, and nothing is decrypted or audited. A LINK order's
    vouchers are never decrypted: each is its gift link's claim URL (on
    `link_base_url` unless PUBLIC_BASE_URL is set) and expiry, audited as
    `gift_link.read_api` (the URL opens the code).

    One query reads the order, its items and their vouchers (a larger order: its
    first chunk, plus one query for the ids of all its delivered vouchers); the
    first chunk is decrypted, then the audit event is inserted: nothing more.
    """
    read = order_read(client_id=client_id, order_id=order_id)
    if read is None:
        return None
    order = read.order
    links = _is_link_order(order)
    if not with_secrets:
        shown = order.status in REVEALABLE_ORDER_STATUSES
        first = _withheld(read.items, links=links) if shown else []
        return OrderReveal(read=read, vouchers=first, audited=frozenset(), withheld=True)
    ids: list[int] = []
    if order.status in REVEALABLE_ORDER_STATUSES:
        ids = [
            item.voucher.id
            for item in read.items
            if item.voucher is not None and item.voucher.status in REVEALABLE_VOUCHER_STATUSES
        ]
        if not read.complete:
            ids += order_voucher_ids(
                order_id=order.pk,
                statuses=REVEALABLE_VOUCHER_STATUSES,
                after_position=read.chunk,
            )
    audited = frozenset(ids)
    base_url = link_base_url if links else None
    first = _decrypt(
        read.items, audited=audited, delivery_type=order.delivery_type, link_base_url=base_url
    )
    if ids:
        _audit_api_read(order=order, actor=actor, voucher_ids=ids, links=links)
        metrics.API_VOUCHER_READS.inc()
    return OrderReveal(read=read, vouchers=first, audited=audited, link_base_url=base_url)
