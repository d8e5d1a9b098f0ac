"""Voucher reveal: only delivered vouchers, always audited, secrets never in reprs."""

from __future__ import annotations

import pytest

from orders.enums import DeliveryType, InventoryStatus, ItemStatus, OrderStatus, SubStatus
from orders.errors import NotFound, RateLimited, VoucherNotRevealable
from orders.models import AuditEvent
from orders.services.actors import Actor
from orders.services.reveal import order_vouchers_reveal, voucher_reveal
from orders.services.transitions import order_transition
from tests.factories import OrderFactory, OrderItemFactory, UserFactory, VoucherFactory

pytestmark = pytest.mark.django_db


def _delivered_order(actor, *, delivery_type=DeliveryType.CODE_WITH_PIN, units=2, delivered=2):
    order = OrderFactory(quantity=units, delivery_type=delivery_type)
    vouchers = []
    for position in range(1, units + 1):
        item = OrderItemFactory(order=order, position=position)
        if position <= delivered:
            voucher = VoucherFactory(
                product=order.product,
                status=InventoryStatus.DELIVERED,
                claim_url=f"https://redeem.example.com/{position}",
            )
            item.voucher, item.status = voucher, ItemStatus.DELIVERED
            item.save()
            vouchers.append(voucher)
    order_transition(
        order_id=order.pk, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING, actor=actor
    )
    final = OrderStatus.DELIVERED if delivered == units else OrderStatus.PARTIALLY_DELIVERED
    sub = SubStatus.INVENTORY_FULFILLED if delivered == units else SubStatus.PARTIAL
    order_transition(order_id=order.pk, status=final, sub_status=sub, actor=actor)
    order.refresh_from_db()
    return order, vouchers


def test_staff_reveal_decrypts_and_writes_one_audit_event(system_actor):
    order, vouchers = _delivered_order(system_actor)
    user = UserFactory(role="support")
    actor = Actor.for_user(user, ip_address="203.0.113.9", user_agent="pytest")

    revealed = voucher_reveal(voucher_id=vouchers[0].pk, actor=actor, reason="Customer support")

    assert revealed.card_number and revealed.card_number.endswith(vouchers[0].card_last4)
    assert revealed.pin_code and revealed.claim_url == "https://redeem.example.com/1"
    assert revealed.card_number not in repr(revealed)
    event = AuditEvent.objects.get(action="voucher.reveal")
    assert (event.actor_user_id, event.voucher_id, event.order_id) == (
        user.pk,
        vouchers[0].pk,
        order.pk,
    )
    assert (event.reason, event.ip_address, event.user_agent) == (
        "Customer support",
        "203.0.113.9",
        "pytest",
    )
    assert revealed.card_number not in str(event.data)


def test_undelivered_voucher_cannot_be_revealed(system_actor):
    voucher = VoucherFactory()
    with pytest.raises(NotFound):
        voucher_reveal(voucher_id=voucher.pk, actor=system_actor, reason="x")
    order = OrderFactory(status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING)
    allocated = VoucherFactory(product=order.product, status=InventoryStatus.ALLOCATED)
    OrderItemFactory(order=order, position=1, voucher=allocated)
    with pytest.raises(VoucherNotRevealable):
        voucher_reveal(voucher_id=allocated.pk, actor=system_actor, reason="x")
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_each_staff_user_reveals_at_most_the_hourly_limit(system_actor, settings):
    settings.REVEAL_RATE_PER_HOUR = 2
    _order, vouchers = _delivered_order(system_actor)
    agent = Actor.for_user(UserFactory(role="support"))
    for _ in range(2):
        voucher_reveal(voucher_id=vouchers[0].pk, actor=agent, reason="Customer support")
    with pytest.raises(RateLimited) as refused:
        voucher_reveal(voucher_id=vouchers[1].pk, actor=agent, reason="Customer support")
    assert "limit of 2 reveals per hour" in refused.value.message
    assert refused.value.retry_after == 60
    assert AuditEvent.objects.filter(action="voucher.reveal").count() == 2
    # The limit is per user: another agent still reveals.
    other = Actor.for_user(UserFactory(role="support"))
    assert voucher_reveal(voucher_id=vouchers[1].pk, actor=other, reason="Customer support")


def test_a_refused_reveal_still_counts_against_the_limit(system_actor, settings):
    settings.REVEAL_RATE_PER_HOUR = 1
    _order, vouchers = _delivered_order(system_actor)
    agent = Actor.for_user(UserFactory(role="support"))
    with pytest.raises(NotFound):
        voucher_reveal(voucher_id=vouchers[0].pk + 1000, actor=agent, reason="x")
    with pytest.raises(RateLimited):
        voucher_reveal(voucher_id=vouchers[0].pk, actor=agent, reason="x")
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_api_read_returns_only_delivered_units_and_hides_pin_for_url_products(system_actor):
    order, vouchers = _delivered_order(
        system_actor, delivery_type=DeliveryType.URL, units=3, delivered=2
    )
    revealed = order_vouchers_reveal(order=order, actor=system_actor)
    assert [r.voucher_id for r in revealed] == [v.pk for v in vouchers]
    assert all(r.pin_code is None for r in revealed)
    event = AuditEvent.objects.get(action="voucher.read_api")
    assert event.data["voucher_ids"] == [v.pk for v in vouchers]


def test_api_read_of_an_undelivered_order_returns_nothing_and_audits_nothing(system_actor):
    order = OrderFactory(status=OrderStatus.FAILED, sub_status=SubStatus.VENDOR_ORDER_FAILED)
    assert order_vouchers_reveal(order=order, actor=system_actor) == []
    assert not AuditEvent.objects.filter(action="voucher.read_api").exists()
