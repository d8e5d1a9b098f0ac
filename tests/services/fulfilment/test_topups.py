"""Mobile top-ups: no vouchers; each unit is recharged through the operator."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.enums import ProductKind
from orders.models import Voucher, Wallet
from orders.services.fulfilment import order_fulfil
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def topup():
    return ProductFactory(
        name="Lunar Mobile", kind=ProductKind.MOBILE_TOPUP, denominations=["10.00"]
    )


def test_every_recharge_confirmed_delivers_the_order(buyer, topup):
    order = buyer.place(
        topup, "TOP-1", quantity=2, denomination="10.00", recipient_phone="+15550100"
    )

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("DELIVERED", "COMPLETED")
    items = list(order.items.order_by("position"))
    assert [(i.status, i.recharge_status) for i in items] == [("DELIVERED", "RECHARGED")] * 2
    assert all(i.vendor_ref.startswith("SIMOP-") for i in items)
    assert not Voucher.objects.exists()


def test_sandbox_partial_top_up_recharges_the_first_unit_and_refunds_the_rest(buyer, topup):
    order = buyer.place(
        topup,
        "SANDBOX-PARTIAL-TOP",
        quantity=3,
        denomination="10.00",
        recipient_phone="+15550100",
        sandbox=True,
    )

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("PARTIALLY_DELIVERED", "REFUNDED")
    assert list(order.items.order_by("position").values_list("recharge_status", flat=True)) == [
        "RECHARGED",
        "FAILED",
        "FAILED",
    ]
    assert order.refund_amount == Decimal("20.00")
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("4990.00")


def test_sandbox_failed_top_up_fails_and_refunds(buyer, topup):
    order = buyer.place(
        topup, "SANDBOX-FAIL-TOP", denomination="10.00", recipient_phone="+15550100", sandbox=True
    )

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("FAILED", "REFUNDED")
    assert order.items.get().recharge_status == "FAILED"
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00")


def test_sandbox_retry_top_up_recovers_after_two_operator_timeouts(buyer, topup, settings):
    settings.FULFILMENT_RETRY_BASE_SECONDS = 0
    order = buyer.place(
        topup, "SANDBOX-RETRY-TOP", denomination="10.00", recipient_phone="+15550100", sandbox=True
    )

    statuses = [order_fulfil(order_id=order.pk).sub_status for _ in range(3)]

    assert statuses == ["PENDING_REPROCESS", "PENDING_REPROCESS", "COMPLETED"]
    assert order.items.get().recharge_status == "RECHARGED"
