"""How large an order may be: a product's bulk limit is 1 to rules.MAX_BULK_LIMIT."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders import rules
from orders.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_the_largest_bulk_limit_is_ten_thousand_units():
    assert rules.MAX_BULK_LIMIT == 10_000
    product = ProductFactory(bulk_limit=rules.MAX_BULK_LIMIT)
    product.full_clean()


def test_a_bulk_limit_above_the_largest_is_refused_with_the_limit_named():
    product = ProductFactory()
    product.bulk_limit = rules.MAX_BULK_LIMIT + 1
    with pytest.raises(ValidationError) as refused:
        product.full_clean()
    assert refused.value.message_dict["bulk_limit"] == [
        "Ensure this value is less than or equal to 10000."
    ]


def test_the_database_refuses_a_bulk_limit_above_the_largest():
    product = ProductFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(bulk_limit=rules.MAX_BULK_LIMIT + 1)
    product.refresh_from_db()
    assert product.bulk_limit == 10
