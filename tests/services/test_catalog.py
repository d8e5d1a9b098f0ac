"""Price changes: audited with before/after; beyond the limits a second person approves."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.errors import (
    PermissionDenied,
    PriceChangeNotPending,
    PriceChangeOwnRequest,
    PriceChangeStale,
    ValidationFailed,
)
from orders.models import AuditEvent, PriceChange
from orders.services.actors import Actor
from orders.services.catalog import (
    price_change_approve,
    price_change_reject,
    product_create,
    product_update,
)
from tests.factories import ProductFactory, UserFactory, VendorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def maker() -> Actor:
    return Actor.for_user(UserFactory(username="maker", role="inventory"))


@pytest.fixture
def checker() -> Actor:
    return Actor.for_user(UserFactory(username="checker", role="finance"))


def _update(product, actor, **values):
    return product_update(product_id=product.pk, values=values, actor=actor)


def test_changes_within_the_limits_apply_at_once(maker, settings):
    settings.PRICE_CHANGE_APPROVAL_POINTS = Decimal("5")
    product = ProductFactory(discount_percent=Decimal("2"))

    saved = _update(product, maker, discount_percent=Decimal("7"), fee_percent=Decimal("1"))

    assert not saved.pending
    assert saved.product.discount_percent == Decimal("7")
    assert saved.price_change.status == PriceChange.Status.APPLIED
    event = AuditEvent.objects.get(action="product.price_change")
    assert event.data["changes"]["discount_percent"] == {"before": "2.000", "after": "7.000"}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"discount_percent": Decimal("5.001")}, "discount_percent moves 5.001 points"),
        ({"fee_percent": Decimal("6")}, "fee_percent moves 6.000 points"),
        ({"tax_percent": Decimal("20")}, "tax_percent moves 20.000 points"),
        ({"fee_fixed": Decimal("1.01")}, "fee_fixed moves 1.01"),
        ({"currency": "EUR"}, "currency changes from USD to EUR"),
        ({"bulk_limit": 21}, "the largest order grows from 500.00 to 1050.00"),
        ({"denominations": ["10.00", "25.00", "101.00"]}, "the largest order grows"),
        ({"min_denomination": Decimal("1"), "max_denomination": Decimal("500")}, "grows"),
    ],
)
def test_changes_beyond_a_limit_wait_for_approval(maker, values, reason):
    product = ProductFactory(denominations=["10.00", "25.00", "50.00"], bulk_limit=10)
    before = {name: getattr(product, name) for name in values}

    saved = _update(product, maker, **values)

    assert saved.pending
    assert any(reason in text for text in saved.price_change.approval_reasons)
    product.refresh_from_db()
    assert {name: getattr(product, name) for name in values} == before
    assert AuditEvent.objects.filter(action="product.price_change_request").count() == 1


def test_lowering_the_bulk_limit_needs_no_approval(maker):
    product = ProductFactory(bulk_limit=10)

    assert not _update(product, maker, bulk_limit=2).pending


def test_small_steps_add_up_within_the_window(maker):
    product = ProductFactory()
    for step in ("4", "8"):  # 4 points, then 4 more: 8 from the start of the window
        saved = _update(product, maker, discount_percent=Decimal(step))

    assert saved.pending
    reasons = saved.price_change.approval_reasons
    assert "discount_percent moves 8.000 points from 0.000" in reasons[0]
    product.refresh_from_db()
    assert product.discount_percent == Decimal("4")


def test_steps_older_than_the_window_do_not_count(maker, settings):
    product = ProductFactory()
    _update(product, maker, discount_percent=Decimal("4"))
    PriceChange.objects.update(applied_at=timezone.now() - timedelta(hours=25))

    assert not _update(product, maker, discount_percent=Decimal("8")).pending


def test_an_approved_value_is_the_new_baseline(maker, checker):
    product = ProductFactory()
    pending = _update(product, maker, discount_percent=Decimal("10")).price_change
    price_change_approve(price_change_id=pending.pk, actor=checker)

    assert not _update(product, maker, discount_percent=Decimal("12")).pending


def test_the_maker_cannot_approve_their_own_change_even_as_superuser():
    boss = Actor.for_user(UserFactory(username="boss", role="admin"))
    product = ProductFactory()
    pending = _update(product, boss, discount_percent=Decimal("50")).price_change

    with pytest.raises(PriceChangeOwnRequest):
        price_change_approve(price_change_id=pending.pk, actor=boss)

    product.refresh_from_db()
    assert product.discount_percent == Decimal("0")


def test_approving_needs_the_permission(maker):
    support = Actor.for_user(UserFactory(username="agent", role="support"))
    pending = _update(ProductFactory(), maker, discount_percent=Decimal("50")).price_change

    with pytest.raises(PermissionDenied):
        price_change_approve(price_change_id=pending.pk, actor=support)
    with pytest.raises(PermissionDenied):
        price_change_approve(price_change_id=pending.pk, actor=maker)


def test_a_change_is_decided_once(maker, checker):
    pending = _update(ProductFactory(), maker, discount_percent=Decimal("50")).price_change
    price_change_reject(price_change_id=pending.pk, actor=checker, note="too generous")

    with pytest.raises(PriceChangeNotPending):
        price_change_approve(price_change_id=pending.pk, actor=checker)

    assert PriceChange.objects.get(pk=pending.pk).status == PriceChange.Status.REJECTED
    event = AuditEvent.objects.get(action="product.price_change_reject")
    assert event.reason == "too generous"


def test_a_stale_request_cannot_be_approved(maker, checker):
    product = ProductFactory()
    pending = _update(product, maker, discount_percent=Decimal("50")).price_change
    _update(product, maker, discount_percent=Decimal("3"))

    with pytest.raises(PriceChangeStale):
        price_change_approve(price_change_id=pending.pk, actor=checker)

    product.refresh_from_db()
    assert product.discount_percent == Decimal("3")


def test_invalid_values_are_refused_before_anything_is_recorded(maker):
    product = ProductFactory()

    with pytest.raises(ValidationFailed):
        _update(product, maker, discount_percent=Decimal("120"))
    with pytest.raises(ValidationFailed):
        _update(product, maker, denominations=["ten"])

    assert not PriceChange.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_new_product_keeps_zero_discount_until_approved(maker, checker):
    saved = product_create(
        values={
            "vendor": VendorFactory(),
            "name": "Comet Coffee",
            "brand": "Comet",
            "kind": "GIFT_CARD",
            "currency": "USD",
            "denominations": ["20.00"],
            "delivery_type": "CODE_WITH_PIN",
            "discount_percent": Decimal("30"),
            "fee_fixed": Decimal("0.20"),
        },
        actor=maker,
    )

    assert saved.pending
    assert saved.product.discount_percent == Decimal("0")
    assert saved.product.fee_fixed == Decimal("0.00")
    price_change_approve(price_change_id=saved.price_change.pk, actor=checker)
    saved.product.refresh_from_db()
    assert saved.product.discount_percent == Decimal("30")
    assert saved.product.fee_fixed == Decimal("0.20")
