"""Gift voucher links: made when a LINK order is delivered, claimed by their recipient.

A LINK order is fulfilled as any other; in the transaction that delivers its
units, each delivered unit gets a GiftLink, so a delivered LINK order never
exists without its links (GV_LINK_PENDING is the step of that same commit,
seen only in the timeline). The recipient opens the link's page and reveals
the code: the first reveal claims the unit, and the order moves to
GV_LINK_CLAIMED once none of its links is left unclaimed. Every reveal, the
claim and each later view, is an audit event of the link's recipient. The
token is never stored nor logged (see GiftLink and orders/logs.py).

A PROTECTED link reveals only after a one-time code: `gift_link_code_send`
e-mails a 6-digit code to the order's customer e-mail (at most one a minute and
CODE_SENDS_PER_HOUR an hour per link), stored only as a keyed HMAC and valid
CODE_TTL; `gift_link_code_verify` checks it (single use). Each wrong code adds
one to `failed_attempts` in one UPDATE; the MAX_WRONG_CODES-th locks the link
(`gift_link_unlock`, support's, opens it again). The page remembers a verified
link in the recipient's session for VERIFIED_FOR. Codes are never logged,
audited or stored in clear.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orders.crypto import gift_link_code_hash, gift_link_hash, gift_link_token
from orders.enums import (
    DeliveryMethod,
    GiftLinkStatus,
    ItemStatus,
    LinkType,
    OrderStatus,
    SubStatus,
)
from orders.errors import (
    GiftLinkCodeRefused,
    GiftLinkGone,
    GiftLinkLocked,
    NotFound,
    ValidationFailed,
)
from orders.models import GiftLink, Order, OrderItem
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.reveal import RevealedVoucher, gift_link_voucher_reveal
from orders.services.transitions import order_transition_held

# What a token looks like (orders.crypto.gift_link_token); anything else is not
# looked up at all.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
CLAIM_PATH = "/gift/{token}/"
SYSTEM = Actor.system("gift-links")
logger = logging.getLogger(__name__)

# The one-time code of a PROTECTED link.
CODE_RE = re.compile(r"^[0-9]{6}$")
CODE_TTL = timedelta(minutes=10)
MAX_WRONG_CODES = 5
CODE_RESEND_AFTER = timedelta(seconds=60)
CODE_SENDS_PER_HOUR = 5
CODE_SEND_WINDOW = timedelta(hours=1)
# How long a verified PROTECTED link stays open in the recipient's session.
VERIFIED_FOR = timedelta(minutes=30)


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
def gift_link_reveal(*, token: str, actor: Actor, code_verified: bool = False) -> GiftPage:
    """Show the link's code to its recipient: the first time claims the unit (and
    the order, GV_LINK_CLAIMED, once every unit is claimed); every time is an
    audit event (`gift_link.claim`, then `gift_link.view`). The order row is locked
    first, so two units claimed at once both count. A locked link raises
    GiftLinkLocked; a PROTECTED one GiftLinkCodeRefused unless `code_verified`
    (the page: its one-time code was verified in this session)."""
    found = _usable(_find(token), now=timezone.now())
    order = Order.objects.select_for_update(no_key=True).get(pk=found.order_id)
    link = _usable(
        GiftLink.objects.select_for_update(no_key=True, of=("self",))
        .select_related("item__voucher")
        .filter(pk=found.pk)
        .first(),
        now=timezone.now(),
    )
    if link.locked:
        raise GiftLinkLocked(LOCKED_MESSAGE)
    if link.link_type == LinkType.PROTECTED and not code_verified:
        raise GiftLinkCodeRefused("Enter the code we e-mailed you first.")
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


# --- PROTECTED links: the e-mailed one-time code ------------------------------------

LOCKED_MESSAGE = "This gift link is locked after too many wrong codes."


def mask_email(address: str) -> str:
    """An address as the page may show it: j•••@example.com."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def _protected(token: str, *, now: datetime) -> GiftLink:
    link = _usable(_find(token), now=now)
    if link.link_type != LinkType.PROTECTED:
        raise GiftLinkCodeRefused("This gift needs no code.")
    if link.locked:
        raise GiftLinkLocked(LOCKED_MESSAGE)
    return link


def _code_context(link: GiftLink, **data: object) -> dict[str, object]:
    return {"gift_link_id": link.pk, "item_id": link.item_id, **data}


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


def gift_link_code_send(*, token: str, actor: Actor) -> str:
    """E-mail a new one-time code for a PROTECTED link to its order's customer
    e-mail and return that address masked. At most one send per
    CODE_RESEND_AFTER and CODE_SENDS_PER_HOUR per hour per link (GiftLinkCodeRefused
    with retry_after). The send is reserved under the link's row lock, the e-mail
    goes out with no transaction open, and a failed send puts the link back as
    it was (the previous code, if any, still valid) and raises GiftLinkCodeRefused:
    nothing is recorded as sent. Audited as `gift_link.code_sent` (never the code)."""
    link = _protected(token, now=timezone.now())
    recipient = link.order.customer_email
    if not recipient:  # refused at placing; an order edited since has none
        raise GiftLinkCodeRefused(
            "This gift has no e-mail address to send a code to. Please contact the sender."
        )
    code = f"{secrets.randbelow(10**6):06d}"
    code_hash = gift_link_code_hash(link.pk, code)
    with transaction.atomic():
        row = GiftLink.objects.select_for_update(no_key=True).get(pk=link.pk)
        if row.locked:
            raise GiftLinkLocked(LOCKED_MESSAGE)
        now = timezone.now()
        if row.code_sent_at is not None and now - row.code_sent_at < CODE_RESEND_AFTER:
            wait = _seconds(row.code_sent_at + CODE_RESEND_AFTER - now)
            raise GiftLinkCodeRefused(
                f"We have just sent you a code. You can ask for another in {wait} seconds.",
                retry_after=wait,
            )
        started = row.code_window_started_at
        in_window = started is not None and now - started < CODE_SEND_WINDOW
        if in_window and row.code_sends >= CODE_SENDS_PER_HOUR:
            assert started is not None
            wait = _seconds(started + CODE_SEND_WINDOW - now)
            raise GiftLinkCodeRefused(
                f"You have asked for {CODE_SENDS_PER_HOUR} codes in the last hour. "
                f"Please try again in {(wait + 59) // 60} minutes.",
                retry_after=wait,
            )
        before = {
            "code_hash": row.code_hash,
            "code_sent_at": row.code_sent_at,
            "code_sends": row.code_sends,
            "code_window_started_at": row.code_window_started_at,
        }
        row.code_hash, row.code_sent_at = code_hash, now
        row.code_sends = row.code_sends + 1 if in_window else 1
        row.code_window_started_at = started if in_window else now
        row.save(update_fields=[*before, "updated_at"])
    minutes = int(CODE_TTL.total_seconds() // 60)
    try:
        send_mail(
            subject=f"Your code to open your {link.order.product_brand} gift",
            message=(
                f"Your code is {code}\n\n"
                f"Enter it on the gift page to open your {link.order.product_name} gift. "
                f"It works once and for {minutes} minutes.\n\n"
                "If you did not ask for it, you can ignore this e-mail. Never share this "
                "code: we will never ask you for it.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient],
        )
    except Exception as error:  # SMTP down, refused, timed out: the recipient retries
        GiftLink.objects.filter(pk=link.pk, code_hash=code_hash).update(**before)
        logger.warning(
            "gift link %d: the one-time code e-mail could not be sent (%s)",
            link.pk,
            type(error).__name__,
        )
        raise GiftLinkCodeRefused(
            "We could not send the code just now. Please try again in a minute."
        ) from None
    masked = mask_email(recipient)
    audit_record(
        action="gift_link.code_sent",
        actor=actor,
        order_id=link.order_id,
        data=_code_context(link, to=masked),
    )
    return masked


def gift_link_code_verify(*, token: str, code: str, actor: Actor) -> GiftLink:
    """Check a PROTECTED link's one-time code. Right and live: the code is used up
    (single use, in one conditional UPDATE) and wrong attempts reset; audited
    `gift_link.code_verified`. Wrong: `failed_attempts` + 1 in one UPDATE (so
    concurrent wrong tries all count), audited `gift_link.code_wrong`; the
    MAX_WRONG_CODES-th locks the link (`gift_link.locked`, GiftLinkLocked). No
    live code (none sent, used, or older than CODE_TTL): GiftLinkCodeRefused,
    not counted (there is nothing to guess)."""
    now = timezone.now()
    link = _protected(token, now=now)
    code = "".join((code or "").split())
    if not link.code_hash or link.code_sent_at is None:
        raise GiftLinkCodeRefused("Ask for a code first: tap “Send me a code”.")
    if now - link.code_sent_at >= CODE_TTL:
        raise GiftLinkCodeRefused("That code has expired. Ask for a new one.")
    right = bool(CODE_RE.match(code)) and hmac.compare_digest(
        gift_link_code_hash(link.pk, code), link.code_hash
    )
    if right:
        used = GiftLink.objects.filter(
            pk=link.pk,
            code_hash=link.code_hash,
            locked=False,
            failed_attempts__lt=MAX_WRONG_CODES,
        ).update(code_hash="", failed_attempts=0, updated_at=now)
        if used:
            audit_record(
                action="gift_link.code_verified",
                actor=actor,
                order_id=link.order_id,
                data=_code_context(link),
            )
            return link
        if GiftLink.objects.filter(pk=link.pk, locked=True).exists():
            raise GiftLinkLocked(LOCKED_MESSAGE)
        raise GiftLinkCodeRefused("That code has already been used. Ask for a new one.")
    GiftLink.objects.filter(pk=link.pk, locked=False).update(
        failed_attempts=F("failed_attempts") + 1, updated_at=now
    )
    # Exactly one of any concurrent wrong tries that reach the limit locks the link.
    locked_now = GiftLink.objects.filter(
        pk=link.pk, locked=False, failed_attempts__gte=MAX_WRONG_CODES
    ).update(locked=True, code_hash="", updated_at=now)
    attempts = GiftLink.objects.values_list("failed_attempts", flat=True).get(pk=link.pk)
    audit_record(
        action="gift_link.code_wrong",
        actor=actor,
        order_id=link.order_id,
        data=_code_context(link, failed_attempts=attempts),
    )
    if locked_now:
        audit_record(
            action="gift_link.locked",
            actor=actor,
            order_id=link.order_id,
            data=_code_context(link, failed_attempts=attempts),
        )
    if locked_now or attempts >= MAX_WRONG_CODES:
        raise GiftLinkLocked(LOCKED_MESSAGE)
    left = MAX_WRONG_CODES - attempts
    raise GiftLinkCodeRefused(
        f"That code is not right. {left} {'try' if left == 1 else 'tries'} left."
    )


@transaction.atomic
def gift_link_unlock(*, link_id: int, actor: Actor, reason: str) -> GiftLink:
    """Support's unlock of a link locked by wrong codes: unlocked, wrong attempts
    and any code cleared (the recipient asks for a new one); audited
    `gift_link.unlocked` with the reason."""
    if not (reason or "").strip():
        raise ValidationFailed("Say why the link is unlocked.", field="reason")
    link = GiftLink.objects.select_for_update(no_key=True).filter(pk=link_id).first()
    if link is None:
        raise NotFound("No such gift link.")
    was = {"locked": link.locked, "failed_attempts": link.failed_attempts}
    link.locked, link.failed_attempts, link.code_hash = False, 0, ""
    link.save(update_fields=["locked", "failed_attempts", "code_hash", "updated_at"])
    audit_record(
        action="gift_link.unlocked",
        actor=actor,
        order_id=link.order_id,
        reason=reason.strip(),
        data=_code_context(link, was=was),
    )
    return link
