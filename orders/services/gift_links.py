"""Gift voucher links: made when a LINK order is delivered, claimed by their recipient.

A LINK order is fulfilled as any other; in the transaction that delivers its
units, each delivered unit gets a GiftLink, so a delivered LINK order never
exists without its links (GV_LINK_PENDING is the step of that same commit,
seen only in the timeline). The recipient opens the link's page and reveals
the code: the first reveal claims the unit, and the order moves to
GV_LINK_CLAIMED once none of its links is left unclaimed. Every reveal, the
claim and each later view, is an audit event of the link's recipient. The
token is never stored nor logged (see GiftLink and orders/logs.py).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.crypto import gift_link_hash, gift_link_token
from orders.enums import (
    DeliveryMethod,
    GiftLinkStatus,
    ItemStatus,
    LinkType,
    OrderStatus,
    SubStatus,
)
from orders.errors import GiftLinkGone, NotFound
from orders.models import GiftLink, Order, OrderItem
from orders.services.actors import Actor
from orders.services.reveal import RevealedVoucher, gift_link_voucher_reveal
from orders.services.transitions import order_transition_held

# What a token looks like (orders.crypto.gift_link_token); anything else is not
# looked up at all.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
CLAIM_PATH = "/gift/{token}/"
SYSTEM = Actor.system("gift-links")


def is_link_order(order: Order) -> bool:
    return order.delivery_method == DeliveryMethod.LINK


def gift_link_url(*, token_seed: str, base_url: str) -> str:
    """A link's claim URL on `base_url` (PUBLIC_BASE_URL, else the API's own host)."""
    base = (settings.PUBLIC_BASE_URL or base_url).rstrip("/")
    return base + CLAIM_PATH.format(token=gift_link_token(token_seed))


def _expiry(order: Order, *, voucher_expires_at: datetime | None, now: datetime) -> datetime:
    """The product's link expiry (else GIFT_LINK_EXPIRY_DAYS) from now, never past
    the voucher's own expiry."""
    days = order.product.gift_link_expiry_days or settings.GIFT_LINK_EXPIRY_DAYS
    expires = now + timedelta(days=days)
    if voucher_expires_at is not None and voucher_expires_at < expires:
        return voucher_expires_at
    return expires


def gift_links_create(*, orders: Sequence[Order], now: datetime) -> int:
    """One link for each delivered unit of the LINK orders among `orders` that has
    none yet, in one read and one INSERT (the caller holds the orders' locks, in
    the transaction that delivers them). Returns how many were made."""
    by_id = {order.pk: order for order in orders if is_link_order(order)}
    if not by_id:
        return 0
    units = OrderItem.objects.filter(
        order_id__in=list(by_id), status=ItemStatus.DELIVERED, gift_link__isnull=True
    ).values_list("pk", "order_id", "voucher__expires_at")
    links = []
    for item_id, order_id, voucher_expires_at in units:
        order = by_id[order_id]
        seed = secrets.token_hex(16)  # 128 random bits, keyed into the token
        links.append(
            GiftLink(
                item_id=item_id,
                order_id=order_id,
                token_seed=seed,
                token_hash=gift_link_hash(gift_link_token(seed)),
                link_type=order.product.link_type or LinkType.PUBLIC,
                expires_at=_expiry(order, voucher_expires_at=voucher_expires_at, now=now),
                created_at=now,
            )
        )
    GiftLink.objects.bulk_create(links, batch_size=500)
    return len(links)


# --- The recipient's page ---------------------------------------------------------


@dataclass(frozen=True)
class GiftPage:
    """What a link's page shows: the gift, and its code once revealed."""

    link: GiftLink
    order: Order
    revealed: RevealedVoucher | None = None

    @property
    def claimed(self) -> bool:
        return self.link.status == GiftLinkStatus.CLAIMED


def _usable(link: GiftLink | None, *, now: datetime) -> GiftLink:
    """The link if it may be opened: NotFound when there is none, GiftLinkGone
    when it was revoked or expired (a claimed link stays open to its recipient:
    the code is theirs)."""
    if link is None:
        raise NotFound("No such gift link.")
    if link.status in (GiftLinkStatus.REVOKED, GiftLinkStatus.EXPIRED):
        raise GiftLinkGone("This gift link can no longer be opened.")
    if link.status == GiftLinkStatus.UNCLAIMED and link.expires_at <= now:
        raise GiftLinkGone("This gift link can no longer be opened.")
    return link


def _find(token: str) -> GiftLink | None:
    if not TOKEN_RE.match(token or ""):
        return None
    return (
        GiftLink.objects.select_related("order", "item__voucher")
        .filter(token_hash=gift_link_hash(token))
        .first()
    )


def gift_link_open(*, token: str) -> GiftPage:
    """The page of a link as first opened: the gift without its code (unclaimed),
    NotFound or GiftLinkGone otherwise. A claimed link is revealed by
    `gift_link_reveal` instead (each view audited)."""
    link = _usable(_find(token), now=timezone.now())
    return GiftPage(link=link, order=link.order)


@transaction.atomic
def gift_link_reveal(*, token: str, actor: Actor) -> GiftPage:
    """Show the link's code to its recipient: the first time claims the unit (and
    the order, GV_LINK_CLAIMED, once every unit is claimed); every time is an
    audit event (`gift_link.claim`, then `gift_link.view`). The order row is locked
    first, so two units claimed at once both count."""
    found = _usable(_find(token), now=timezone.now())
    order = Order.objects.select_for_update(no_key=True).get(pk=found.order_id)
    link = _usable(
        GiftLink.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item__voucher")
        .filter(pk=found.pk)
        .first(),
        now=timezone.now(),
    )
    voucher = link.item.voucher
    if voucher is None:  # a link is made for a delivered unit only
        raise NotFound("No such gift link.")
    now = timezone.now()
    claiming = link.status == GiftLinkStatus.UNCLAIMED
    if claiming:
        link.status, link.claimed_at = GiftLinkStatus.CLAIMED, now
    link.views += 1
    link.save(update_fields=["status", "claimed_at", "views", "updated_at"])
    revealed = gift_link_voucher_reveal(
        voucher=voucher,
        order=order,
        actor=actor,
        action="gift_link.claim" if claiming else "gift_link.view",
        gift_link_id=link.pk,
    )
    if (
        claiming
        and (order.status, order.sub_status) == (OrderStatus.DELIVERED, SubStatus.GV_LINK_UNCLAIMED)
        and not GiftLink.objects.filter(order_id=order.pk, status=GiftLinkStatus.UNCLAIMED).exists()
    ):
        order_transition_held(
            order=order,
            status=OrderStatus.DELIVERED,
            sub_status=SubStatus.GV_LINK_CLAIMED,
            actor=actor,
            note=f"All {order.quantity} gift link(s) claimed",
        )
    return GiftPage(link=link, order=order, revealed=revealed)
