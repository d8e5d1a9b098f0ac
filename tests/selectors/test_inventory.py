"""Low stock: one definition for the inventory page and the overview."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.enums import ProductKind
from orders.selectors.inventory import low_stock, stock_overview
from orders.selectors.overview import dashboard_overview
from tests.factories import ProductFactory, VoucherFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelves():
    """A gift card short of stock, a top-up, and a retired product with a few units."""
    card = ProductFactory(
        name="Comet Music", denominations=["10.00", "25.00"], low_stock_threshold=3
    )
    VoucherFactory.create_batch(4, product=card, denomination=Decimal("25.00"))
    VoucherFactory(product=card, denomination=Decimal("10.00"))
    VoucherFactory(
        product=card, denomination=Decimal("10.00"), expires_at=timezone.now() - timedelta(days=1)
    )
    topup = ProductFactory(
        name="Lunar Mobile", kind=ProductKind.MOBILE_TOPUP, denominations=["10.00", "20.00"]
    )
    retired = ProductFactory(name="Old Books", is_active=False, low_stock_threshold=5)
    VoucherFactory(product=retired, denomination=Decimal("25.00"))
    return card, topup, retired


def test_a_denomination_below_its_threshold_is_low_counting_only_allocatable_units(shelves):
    card, _topup, _retired = shelves
    rows = {(row.product_id, row.denomination): row for row in stock_overview()}
    assert rows[(card.pk, Decimal("10.00"))].low_stock is True  # 1 unexpired of 3
    assert rows[(card.pk, Decimal("25.00"))].low_stock is False  # 4 of 3


def test_top_ups_never_hold_stock_so_they_are_never_low(shelves):
    _card, topup, _retired = shelves
    assert all(row.product_id != topup.pk for row in stock_overview())
    assert all(row["product_id"] != topup.pk for row in dashboard_overview().low_stock)


def test_a_retired_product_shows_its_units_but_is_not_low(shelves):
    _card, _topup, retired = shelves
    (row,) = [row for row in stock_overview() if row.product_id == retired.pk]
    assert (row.available, row.low_stock) == (1, False)


def test_the_overview_lists_the_inventory_pages_low_rows_fewest_units_first(shelves):
    card, _topup, _retired = shelves
    VoucherFactory.create_batch(2, product=card, denomination=Decimal("50.00"))
    card.denominations = ["10.00", "25.00", "50.00"]
    card.save()
    empty = ProductFactory(name="Aurora Games", denominations=["5.00"], low_stock_threshold=1)

    page = [(row.product_id, row.denomination) for row in stock_overview() if row.low_stock]
    overview = [(row["product_id"], row["denomination"]) for row in dashboard_overview().low_stock]
    assert sorted(overview) == sorted(page)
    assert overview == [
        (empty.pk, Decimal("5.00")),
        (card.pk, Decimal("10.00")),
        (card.pk, Decimal("50.00")),
    ]
    assert [row.available for row in low_stock()] == [0, 1, 2]
