"""Placing orders: exact pricing, one debit per reference_code, clear refusals."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from orders.enums import ItemStatus, OrderStatus, ProductKind, RechargeStatus, SubStatus
from orders.errors import Conflict, InsufficientFunds, ValidationFailed
from orders.models import Order, StatusChange, Wallet, WalletEntry
from orders.services import placing
from orders.services.clients import client_create
from orders.services.placing import Customer, order_create
from orders.services.pricing import charges_quote
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer(system_actor):
    client, wallet, _ = client_create(
        name="Buyer", currency="USD", balance="200.00", actor=system_actor
    )
    return client, wallet


def _place(client, actor, product, **overrides):
    fields = {
        "product_id": product.pk,
        "denomination": "25.00",
        "quantity": 2,
        "reference_code": "REF-1",
        "customer": Customer(name="Ada", email="ada@example.com"),
    }
    fields.update(overrides)
    return order_create(client=client, actor=actor, **fields)


def test_order_charges_exactly_the_quote_and_records_one_debit(buyer, system_actor):
    client, wallet = buyer
    product = ProductFactory(
        discount_percent=Decimal("2"), fee_fixed=Decimal("0.50"), tax_percent=Decimal("10")
    )
    quote = charges_quote(client=client, product_id=product.pk, denomination="25.00", quantity=2)
    placed = _place(client, system_actor, product)

    order = placed.order
    assert placed.created
    assert (order.face_value, order.discount, order.fees, order.taxes) == (
        Decimal("50.00"),
        Decimal("1.00"),
        Decimal("0.50"),
        Decimal("0.05"),
    )
    assert order.amount == quote.total == Decimal("49.55")
    assert order.wallet_amount == quote.wallet_amount
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("150.45")
    debit = WalletEntry.objects.get(order=order)
    assert debit.amount == Decimal("-49.55") and order.transaction_id == debit.pk
    assert (order.status, order.sub_status) == (OrderStatus.PLACED, SubStatus.INITIAL)
    assert order.items.count() == 2
    assert set(order.items.values_list("status", flat=True)) == {ItemStatus.PENDING}
    assert StatusChange.objects.filter(order=order, to_status=OrderStatus.PLACED).count() == 1


def test_replay_returns_the_same_order_and_moves_no_money(buyer, system_actor):
    client, wallet = buyer
    product = ProductFactory()
    first = _place(client, system_actor, product)
    again = _place(client, system_actor, product)

    assert not again.created and again.order.pk == first.order.pk
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("150.00")
    assert WalletEntry.objects.filter(order__client=client, kind="ORDER_DEBIT").count() == 1


@pytest.mark.parametrize(
    ("placed", "replayed"),
    [("25.00", 25), ("25", "25.00"), (Decimal("25.0"), "25"), ("25.00", " 25.00 ")],
)
def test_replay_compares_amounts_by_value(buyer, system_actor, placed, replayed):
    client, _ = buyer
    product = ProductFactory()
    first = _place(client, system_actor, product, denomination=placed)
    again = _place(client, system_actor, product, denomination=replayed)
    assert not again.created and again.order.pk == first.order.pk


def test_replay_of_an_order_hashed_before_amounts_were_canonical(buyer, system_actor):
    client, _ = buyer
    product = ProductFactory()
    first = _place(client, system_actor, product, denomination="25")
    # The hash this order got when the denomination was hashed as sent ("25").
    legacy = placing._request_hash(
        product_id=str(product.pk),
        denomination="25",
        quantity="2",
        customer=["Ada", "ada@example.com", ""],
        payment_method="WALLET",
        recipient_phone="",
        wallet_currency="",
    )
    Order.objects.filter(pk=first.order.pk).update(request_hash=legacy)
    again = _place(client, system_actor, product, denomination="25")
    assert not again.created and again.order.pk == first.order.pk
    with pytest.raises(Conflict):
        _place(client, system_actor, product, denomination="10.00")


def test_same_reference_with_a_different_request_is_a_conflict(buyer, system_actor):
    client, wallet = buyer
    product = ProductFactory()
    _place(client, system_actor, product)
    with pytest.raises(Conflict, match="already used"):
        _place(client, system_actor, product, quantity=1)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("150.00")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"denomination": "30.00"}, "denomination"),
        ({"denomination": "25.001"}, "denomination"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 11}, "quantity"),
        ({"reference_code": ""}, "reference_code"),
        ({"reference_code": "has spaces"}, "reference_code"),
        ({"customer": Customer(email="not-an-email")}, "customer.email"),
        ({"product_id": 999999}, "product_id"),
        ({"recipient_phone": "+447700900123"}, "recipient_phone"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(buyer, system_actor, overrides, field):
    client, wallet = buyer
    product = ProductFactory()
    with pytest.raises(ValidationFailed) as excinfo:
        _place(client, system_actor, product, **overrides)
    assert excinfo.value.field == field
    assert not Order.objects.exists()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("200.00")


def test_insufficient_funds_writes_nothing(buyer, system_actor):
    client, _ = buyer
    product = ProductFactory(denominations=["100.00"])
    with pytest.raises(InsufficientFunds, match=r"200\.00 USD available"):
        _place(client, system_actor, product, denomination="100.00", quantity=3)
    assert not Order.objects.exists()
    assert WalletEntry.objects.filter(kind="ORDER_DEBIT").count() == 0


def test_range_product_accepts_any_amount_inside_the_range(buyer, system_actor):
    client, _ = buyer
    product = ProductFactory(
        denominations=[], min_denomination=Decimal("5.00"), max_denomination=Decimal("100.00")
    )
    placed = _place(client, system_actor, product, denomination="17.35", quantity=1)
    assert placed.order.amount == Decimal("17.35")
    with pytest.raises(ValidationFailed, match=r"between 5\.00 and 100\.00"):
        _place(client, system_actor, product, denomination="100.01", reference_code="R2")


def test_mobile_topup_needs_a_recipient_phone(buyer, system_actor):
    client, _ = buyer
    product = ProductFactory(kind=ProductKind.MOBILE_TOPUP, denominations=["10.00"])
    with pytest.raises(ValidationFailed) as excinfo:
        _place(client, system_actor, product, denomination="10.00", quantity=1)
    assert excinfo.value.field == "recipient_phone"
    placed = _place(
        client,
        system_actor,
        product,
        denomination="10.00",
        quantity=1,
        recipient_phone="+44 7700 900123",
        reference_code="TOPUP-1",
    )
    assert placed.order.recipient_phone == "+447700900123"
    assert placed.order.items.get().recharge_status == RechargeStatus.PENDING


def test_paying_from_a_wallet_in_another_currency_uses_the_rate(system_actor, settings):
    settings.EXCHANGE_RATES = "EUR/USD=1.10"
    client, wallet, _ = client_create(
        name="Euro buyer", currency="USD", balance="100.00", actor=system_actor
    )
    product = ProductFactory(currency="EUR", denominations=["20.00"])
    placed = order_create(
        client=client,
        actor=system_actor,
        product_id=product.pk,
        denomination="20.00",
        quantity=1,
        reference_code="FX-1",
    )
    order = placed.order
    assert (order.currency, order.amount) == ("EUR", Decimal("20.00"))
    assert (order.wallet_currency, order.exchange_rate, order.wallet_amount) == (
        "USD",
        Decimal("1.10"),
        Decimal("22.00"),
    )
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("78.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_identical_requests_create_one_order(system_actor):
    client, wallet, _ = client_create(
        name="Racer", currency="USD", balance="1000.00", actor=system_actor
    )
    product = ProductFactory()
    results: list[object] = []
    barrier = threading.Barrier(16)

    def place() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(_place(client, system_actor, product))
        except Exception as exc:  # surfaced by the assert below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=place) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.order.pk for r in results}) == 1  # type: ignore[attr-defined]
    assert sum(r.created for r in results) == 1  # type: ignore[attr-defined]
    assert Order.objects.count() == 1
    assert WalletEntry.objects.filter(kind="ORDER_DEBIT").count() == 1
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("950.00")
