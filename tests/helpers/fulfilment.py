"""Shared checks and builders of the fulfilment tests: big orders and stock
written set-based, and the invariants every crash and race test asserts."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from django.core.management import call_command
from django.db.models import Sum

from orders.models import Order, OrderItem, Voucher, Wallet, WalletEntry
from orders.services.refunds import refund_due
from orders.services.wallets import ledger_mismatches
from tests.factories import OrderFactory, VoucherFactory


def big_order(buyer, product, units: int, reference: str) -> Order:
    """A placed order of `units` units, rows written set-based (no money moved)."""
    order = OrderFactory(
        client=buyer.client,
        product=product,
        quantity=units,
        reference_code=reference,
        wallet=buyer.wallet,
        wallet_currency="USD",
    )
    OrderItem.objects.bulk_create(
        [OrderItem(order=order, position=n) for n in range(1, units + 1)], batch_size=2000
    )
    return order


def bulk_stock(product, units: int) -> None:
    vouchers = VoucherFactory.build_batch(units, product=product)
    Voucher.objects.bulk_create(vouchers, batch_size=2000)


def assert_each_voucher_once(order_ids: list[int]) -> None:
    linked = list(OrderItem.objects.exclude(voucher=None).values_list("voucher_id", flat=True))
    assert len(linked) == len(set(linked)), "a voucher is on two items"
    delivered = OrderItem.objects.filter(order_id__in=order_ids, status="DELIVERED")
    assert delivered.filter(voucher=None).count() == 0
    taken = Voucher.objects.filter(status__in=["ALLOCATED", "DELIVERED"]).count()
    assert taken == delivered.count()


def assert_nothing_lost_or_doubled(buyer, order_ids):
    call_command("check_ledger")  # raises CommandError if a balance != its entries
    assert ledger_mismatches() == []
    linked = list(OrderItem.objects.exclude(voucher=None).values_list("voucher_id", flat=True))
    assert len(linked) == len(set(linked)), "a voucher is on two items"
    delivered = OrderItem.objects.filter(order_id__in=order_ids, status="DELIVERED")
    assert delivered.filter(voucher=None).count() == 0, "a delivered unit has no voucher"
    assert not OrderItem.objects.filter(order_id__in=order_ids, status="PENDING").exists()
    assert Voucher.objects.filter(source="VENDOR", order_item=None).count() == 0
    assert Voucher.objects.filter(status="DELIVERED").count() == delivered.count()
    debits = Counter(
        WalletEntry.objects.filter(kind="ORDER_DEBIT").values_list("order_id", flat=True)
    )
    assert all(debits[pk] == 1 for pk in order_ids), "an order was not debited exactly once"
    refunds = Counter(WalletEntry.objects.filter(kind="REFUND").values_list("order_id", flat=True))
    assert max(refunds.values(), default=0) <= 1, "an order was refunded twice"
    for order in Order.objects.filter(pk__in=order_ids):
        assert order.refund_amount == refund_due(order=order), order.reference_code
        assert refunds[order.pk] == (1 if order.refund_amount > 0 else 0), order.reference_code
    charged = Order.objects.filter(pk__in=order_ids).aggregate(s=Sum("wallet_amount"))["s"]
    refunded = Order.objects.filter(pk__in=order_ids).aggregate(s=Sum("refund_amount"))["s"]
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00") - charged + refunded
