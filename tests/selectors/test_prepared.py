"""A prepared query answers what its queryset answers, for every set of values,
and refuses a query where a value does not sit in one parameter of its own."""

from __future__ import annotations

import pytest

from orders.models import Order, Voucher
from orders.selectors.prepared import Prepared, columns
from tests.factories import OrderFactory, ProductFactory, stock

pytestmark = pytest.mark.django_db


def _orders(client_id, reference_code):
    return Order.objects.filter(client_id=client_id, reference_code=reference_code)


BY_REFERENCE = Prepared(
    lambda client_id, reference_code: _orders(client_id, reference_code).values_list(
        *columns(Order)
    ),
    "client_id",
    "reference_code",
)


def test_it_answers_as_its_queryset_for_every_value():
    first, second = OrderFactory(reference_code="A-1"), OrderFactory(reference_code="B-2")

    for order in (first, second):
        found = BY_REFERENCE.instances(
            Order, client_id=order.client_id, reference_code=order.reference_code
        )
        assert [o.pk for o in found] == [order.pk]
        assert found[0].amount == order.amount and found[0].placed_at == order.placed_at
        assert BY_REFERENCE.rows(
            client_id=order.client_id, reference_code=order.reference_code
        ) == list(_orders(order.client_id, order.reference_code).values_list(*columns(Order)))
    # Another client's reference is not found, nor is an unknown one.
    assert BY_REFERENCE.rows(client_id=second.client_id, reference_code="A-1") == []
    assert BY_REFERENCE.rows(client_id=first.client_id, reference_code="NONE") == []


def test_sealed_secrets_come_back_as_the_orm_reads_them():
    product = ProductFactory()
    voucher = stock(product, 1)[0]
    secrets = Prepared(
        lambda pk: Voucher.objects.filter(pk=pk).values_list("card_number", "pin_code"), "pk"
    )

    assert secrets.rows(pk=voucher.pk) == list(
        Voucher.objects.filter(pk=voucher.pk).values_list("card_number", "pin_code")
    )


def test_a_value_used_twice_is_refused_by_name():
    twice = Prepared(
        lambda pk: Order.objects.filter(pk=pk, transaction_id=pk).values_list("pk"), "pk"
    )

    with pytest.raises(ValueError, match="'pk' is 2 parameters of the query, not 1"):
        twice.rows(pk=1)
