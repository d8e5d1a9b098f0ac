"""Gift links: made at delivery, stored only as a keyed hash, claimed by their
recipient (every reveal audited), closed when expired or revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orders.crypto import gift_link_hash, gift_link_token, unseal
from orders.enums import GiftLinkStatus, LinkType, OrderStatus, SubStatus
from orders.errors import (
    GiftLinkCodeRefused,
    GiftLinkGone,
    GiftLinkLocked,
    NotFound,
    ValidationFailed,
)
from orders.models import AuditEvent, GiftLink, Order
from orders.services.actors import Actor
from orders.services.gift_links import (
    gift_link_code_send,
    gift_link_code_verify,
    gift_link_open,
    gift_link_reveal,
    gift_link_unlock,
    mask_email,
)
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user
from tests.helpers.concurrency import at_once
from tests.helpers.gift_links import claim_tokens, link_order

pytestmark = pytest.mark.django_db

RECIPIENT = Actor(label="link-recipient", ip_address="203.0.113.9", user_agent="Phone/1.0")


@pytest.fixture
def shop(system_actor):
    return make_api_user("Gift Shop", system_actor)


@pytest.fixture
def product():
    return ProductFactory(name="Acme Gift Card", brand="Acme")


def _tokens(shop, order):
    return claim_tokens(shop.get(f"/api/v1/orders/{order.pk}").json())


def test_the_token_is_stored_only_as_a_keyed_hash(shop, product):
    order = link_order(shop, product)
    (token,) = _tokens(shop, order)
    link = GiftLink.objects.get(order=order)

    assert len(token) == 32  # 192 bits, base64url
    assert link.token_hash == gift_link_hash(token)
    assert link.token_hash != hashlib.sha256(token.encode()).hexdigest()  # keyed, not bare
    # No column of the link's row (nor of any table's row of this order) holds the token.
    with connection.cursor() as cursor:
        for table in ("orders_giftlink", "orders_orderitem", "orders_order", "orders_auditevent"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            assert token not in repr(cursor.fetchall()), table
    # The token is the keyed HMAC of the stored seed: without the key, the seed is no link.
    assert gift_link_token(link.token_seed) == token
    assert token not in link.token_seed


def test_a_claim_reveals_the_code_marks_the_unit_and_is_audited(shop, product):
    order = link_order(shop, product, quantity=2)
    first, second = _tokens(shop, order)

    page = gift_link_reveal(token=first, actor=RECIPIENT)

    voucher = page.link.item.voucher
    codes_match = page.revealed.card_number == unseal(voucher.card_number)
    assert codes_match, "the page does not show the unit's code"
    assert page.link.status == GiftLinkStatus.CLAIMED and page.link.claimed_at is not None
    event = AuditEvent.objects.get(action="gift_link.claim")
    assert (event.actor_label, event.ip_address, event.user_agent) == (
        "link-recipient",
        "203.0.113.9",
        "Phone/1.0",
    )
    assert (event.order_id, event.voucher_id) == (order.pk, voucher.pk)
    assert event.data == {"channel": "gift_link", "gift_link_id": page.link.pk}
    assert first not in repr(event.__dict__)
    # One unit of two claimed: the order waits for the other.
    assert Order.objects.get(pk=order.pk).sub_status == SubStatus.GV_LINK_UNCLAIMED

    gift_link_reveal(token=second, actor=RECIPIENT)
    claimed = Order.objects.get(pk=order.pk)
    assert (claimed.status, claimed.sub_status) == (
        OrderStatus.DELIVERED,
        SubStatus.GV_LINK_CLAIMED,
    )
    assert claimed.status_changes.filter(to_sub_status=SubStatus.GV_LINK_CLAIMED).count() == 1


def test_every_later_view_of_a_claimed_link_is_audited_again(shop, product):
    order = link_order(shop, product)
    (token,) = _tokens(shop, order)

    gift_link_reveal(token=token, actor=RECIPIENT)
    again = gift_link_reveal(token=token, actor=RECIPIENT)
    gift_link_reveal(token=token, actor=RECIPIENT)

    assert again.revealed is not None and again.claimed
    actions = list(
        AuditEvent.objects.filter(order_id=order.pk, action__startswith="gift_link.")
        .exclude(action="gift_link.read_api")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["gift_link.claim", "gift_link.view", "gift_link.view"]
    assert GiftLink.objects.get(order=order).views == 3
    # The order moved once.
    assert (
        Order.objects.get(pk=order.pk)
        .status_changes.filter(to_sub_status=SubStatus.GV_LINK_CLAIMED)
        .count()
        == 1
    )


def test_opening_shows_no_code_and_audits_nothing(shop, product):
    order = link_order(shop, product)
    (token,) = _tokens(shop, order)

    page = gift_link_open(token=token)

    assert page.revealed is None and not page.claimed
    assert not AuditEvent.objects.filter(action__in=["gift_link.claim", "gift_link.view"]).exists()


@pytest.mark.parametrize("token", ["", "x" * 32, "not a token", "A" * 31, "A" * 200])
def test_an_unknown_token_is_not_found(token):
    with pytest.raises(NotFound):
        gift_link_open(token=token)
    with pytest.raises(NotFound):
        gift_link_reveal(token=token, actor=RECIPIENT)


@pytest.mark.parametrize("status", [GiftLinkStatus.REVOKED, GiftLinkStatus.EXPIRED])
def test_a_revoked_or_expired_link_is_gone(shop, product, status):
    order = link_order(shop, product)
    (token,) = _tokens(shop, order)
    GiftLink.objects.filter(order=order).update(status=status)

    with pytest.raises(GiftLinkGone):
        gift_link_open(token=token)
    with pytest.raises(GiftLinkGone):
        gift_link_reveal(token=token, actor=RECIPIENT)
    assert not AuditEvent.objects.filter(action="gift_link.claim").exists()


def test_an_unclaimed_link_past_its_expiry_is_gone_but_a_claimed_one_still_opens(shop, product):
    order = link_order(shop, product, quantity=2)
    unclaimed, claimed = _tokens(shop, order)
    gift_link_reveal(token=claimed, actor=RECIPIENT)
    GiftLink.objects.filter(order=order).update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(GiftLinkGone):
        gift_link_reveal(token=unclaimed, actor=RECIPIENT)
    assert gift_link_reveal(token=claimed, actor=RECIPIENT).revealed is not None


def test_expiry_comes_from_the_product_or_the_setting_and_never_outlives_the_voucher(
    shop, settings
):
    settings.GIFT_LINK_EXPIRY_DAYS = 90
    default = ProductFactory()
    short = ProductFactory(gift_link_expiry_days=7, link_type=LinkType.PROTECTED)
    before = timezone.now()

    days = {}
    for n, product in enumerate((default, short)):
        order = link_order(shop, product, reference_code=f"ORD-EXP-{n}")
        link = GiftLink.objects.get(order=order)
        days[product.pk] = (link.expires_at - before).days
        assert link.link_type == (product.link_type or LinkType.PUBLIC)
    assert days == {default.pk: 90, short.pk: 7}

    soon = ProductFactory(gift_link_expiry_days=365)
    order = link_order(shop, soon, reference_code="ORD-EXP-SOON")
    link = GiftLink.objects.get(order=order)
    assert link.expires_at == link.item.voucher.expires_at  # the voucher expires first


def _protected_link(shop):
    product = ProductFactory(link_type=LinkType.PROTECTED)
    order = link_order(shop, product, reference_code="ORD-PROT-1")
    (token,) = _tokens(shop, order)
    return order, token


def _code_of(mailbox) -> str:
    return re.search(r"\b(\d{6})\b", mailbox[-1].body).group(1)  # type: ignore[union-attr]


def test_a_protected_link_reveals_only_once_its_code_was_verified(shop, mailoutbox):
    _order, token = _protected_link(shop)
    with pytest.raises(GiftLinkCodeRefused):
        gift_link_reveal(token=token, actor=RECIPIENT)
    with pytest.raises(GiftLinkCodeRefused, match="Ask for a code first"):
        gift_link_code_verify(token=token, code="123456", actor=RECIPIENT)

    assert gift_link_code_send(token=token, actor=RECIPIENT) == "a•••@example.com"
    gift_link_code_verify(token=token, code=_code_of(mailoutbox), actor=RECIPIENT)
    page = gift_link_reveal(token=token, actor=RECIPIENT, code_verified=True)
    assert page.revealed is not None and page.claimed


def test_wrong_codes_count_from_any_stale_copy_and_the_fifth_locks(shop, mailoutbox):
    order, token = _protected_link(shop)
    gift_link_code_send(token=token, actor=RECIPIENT)
    right = _code_of(mailoutbox)
    wrong = "999999" if right != "999999" else "888888"
    # Another request's earlier increment is never overwritten: each is one UPDATE of F()+1.
    GiftLink.objects.filter(order=order).update(failed_attempts=3)
    with pytest.raises(GiftLinkCodeRefused, match="1 try left"):
        gift_link_code_verify(token=token, code=wrong, actor=RECIPIENT)
    with pytest.raises(GiftLinkLocked):
        gift_link_code_verify(token=token, code=wrong, actor=RECIPIENT)
    with pytest.raises(GiftLinkLocked):
        gift_link_code_verify(token=token, code=right, actor=RECIPIENT)
    with pytest.raises(GiftLinkLocked):
        gift_link_reveal(token=token, actor=RECIPIENT, code_verified=True)
    link = GiftLink.objects.get(order=order)
    assert (link.locked, link.failed_attempts, link.code_hash) == (True, 5, "")
    assert AuditEvent.objects.filter(action="gift_link.locked", order_id=order.pk).count() == 1


def test_support_unlocks_a_locked_link_audited_and_the_recipient_asks_a_new_code(
    shop, mailoutbox, system_actor
):
    order, token = _protected_link(shop)
    GiftLink.objects.filter(order=order).update(locked=True, failed_attempts=5)
    link = GiftLink.objects.get(order=order)
    with pytest.raises(ValidationFailed):
        gift_link_unlock(link_id=link.pk, actor=system_actor, reason=" ")
    with pytest.raises(NotFound):
        gift_link_unlock(link_id=link.pk + 1000, actor=system_actor, reason="Checked")

    unlocked = gift_link_unlock(
        link_id=link.pk, actor=system_actor, reason="Customer called; identity checked"
    )
    assert (unlocked.locked, unlocked.failed_attempts) == (False, 0)
    event = AuditEvent.objects.get(action="gift_link.unlocked")
    assert event.order_id == order.pk and event.reason == "Customer called; identity checked"
    assert event.data["was"] == {"locked": True, "failed_attempts": 5}
    gift_link_code_send(token=token, actor=RECIPIENT)
    gift_link_code_verify(token=token, code=_code_of(mailoutbox), actor=RECIPIENT)


def test_a_public_link_has_no_code_step_and_addresses_are_masked(shop, product):
    order = link_order(shop, product)
    (token,) = _tokens(shop, order)
    with pytest.raises(GiftLinkCodeRefused):
        gift_link_code_send(token=token, actor=RECIPIENT)
    assert mask_email("jane.doe@example.com") == "j•••@example.com"
    assert mask_email("") == "•••"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_wrong_codes_at_once_both_count_and_one_locks(shop, mailoutbox):
    order, token = _protected_link(shop)
    gift_link_code_send(token=token, actor=RECIPIENT)
    wrong = "999999" if _code_of(mailoutbox) != "999999" else "888888"
    GiftLink.objects.filter(order=order).update(failed_attempts=3)

    def guess() -> str:
        try:
            gift_link_code_verify(token=token, code=wrong, actor=RECIPIENT)
        except (GiftLinkCodeRefused, GiftLinkLocked) as refused:
            return type(refused).__name__
        return "verified"

    results = at_once(guess, 2)
    assert sorted(results) == ["GiftLinkCodeRefused", "GiftLinkLocked"] or results == [
        "GiftLinkLocked",
        "GiftLinkLocked",
    ]
    link = GiftLink.objects.get(order=order)
    assert (link.failed_attempts, link.locked) == (5, True)
    assert AuditEvent.objects.filter(action="gift_link.code_wrong", order_id=order.pk).count() == 2
    assert AuditEvent.objects.filter(action="gift_link.locked", order_id=order.pk).count() == 1
