"""Allocation from inventory, the vendor path for what inventory cannot cover,
and idempotency when the same order is fulfilled twice or concurrently."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections

from orders.enums import DeliveryType, InventoryStatus, ItemStatus, VoucherSource
from orders.models import Order, OrderItem, StatusChange, Voucher, WalletEntry
from orders.services.fulfilment import idempotency_key, order_fulfil
from orders.vendors.simulated import SimulatedVendor
from tests.factories import ProductFactory, expiring_in, stock


@pytest.mark.django_db
def test_inventory_covers_the_order_earliest_expiry_first(buyer, product):
    later = stock(product, 2, expires_at=expiring_in(300))
    sooner = stock(product, 2, expires_at=expiring_in(30))
    expired = stock(product, 1, expires_at=expiring_in(-1))
    order = buyer.place(product, "INV-1", quantity=2)

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("DELIVERED", "INVENTORY_FULFILLED")
    assert order.delivered_at is not None
    items = list(order.items.order_by("position"))
    assert [i.voucher_id for i in items] == [v.pk for v in sooner]
    assert all(i.status == ItemStatus.DELIVERED and i.delivered_at for i in items)
    for voucher in Voucher.objects.filter(pk__in=[v.pk for v in sooner]):
        assert voucher.status == InventoryStatus.DELIVERED and voucher.delivered_at
    assert set(
        Voucher.objects.filter(pk__in=[v.pk for v in later]).values_list("status", flat=True)
    ) == {"AVAILABLE"}
    assert Voucher.objects.get(pk=expired[0].pk).status == "AVAILABLE"  # never handed out


@pytest.mark.django_db
def test_units_inventory_cannot_cover_are_bought_from_the_vendor(buyer, product):
    stock(product, 1)
    order = buyer.place(product, "MIX-1", quantity=3)

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("DELIVERED", "VENDOR_VOUCHER_FETCHED")
    assert order.vendor_order_ref.startswith("SIM-")
    vouchers = Voucher.objects.filter(order_item__order=order)
    assert sorted(vouchers.values_list("source", flat=True)) == ["IMPORT", "VENDOR", "VENDOR"]
    timeline = list(order.status_changes.values_list("to_sub_status", flat=True))
    assert timeline == [
        "INITIAL",
        "PROCESSING",
        "VENDOR_ORDER_PENDING",
        "VENDOR_ORDER_CREATED",
        "VENDOR_VOUCHER_FETCHED",
        "VENDOR_VOUCHER_FETCHED",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT card_number, pin_code, card_last4, fingerprint FROM orders_voucher "
            "WHERE source = %s",
            [VoucherSource.VENDOR],
        )
        rows = cursor.fetchall()
    assert len(rows) == 2
    for card, pin, last4, fp in rows:
        assert card.startswith("enc:v1:") and pin.startswith("enc:v1:")  # encrypted at rest
        assert len(last4) == 4 and len(fp) == 64


@pytest.mark.django_db
def test_the_simulated_vendor_sells_the_same_vouchers_for_the_same_key(product):
    vendor = SimulatedVendor()
    first = vendor.place(
        order_ref="R", idempotency_key="K-1", product=product, denomination=Decimal(25), quantity=2
    )
    again = vendor.place(
        order_ref="R", idempotency_key="K-1", product=product, denomination=Decimal(25), quantity=2
    )
    other = vendor.place(
        order_ref="R", idempotency_key="K-2", product=product, denomination=Decimal(25), quantity=2
    )
    codes = [v.card_number for v in vendor.fetch(vendor_order_ref=first.ref, product=product)]
    assert first == again and first.ref != other.ref
    assert codes == [
        v.card_number for v in vendor.fetch(vendor_order_ref=again.ref, product=product)
    ]
    assert len(set(codes)) == 2


@pytest.mark.django_db
def test_url_products_get_a_claim_url_and_no_pin(buyer):
    product = ProductFactory(delivery_type=DeliveryType.URL)
    order = order_fulfil(order_id=buyer.place(product, "URL-1").pk)

    voucher = Voucher.objects.get(order_item__order=order)
    assert order.status == "DELIVERED"
    assert voucher.claim_url is not None and voucher.pin_code is None


@pytest.mark.django_db
def test_fulfilling_a_delivered_order_again_changes_nothing(buyer, product):
    stock(product, 3)
    order = buyer.place(product, "TWICE-1", quantity=2)
    order_fulfil(order_id=order.pk)
    changes = StatusChange.objects.filter(order=order).count()

    again = order_fulfil(order_id=order.pk)

    assert again.status == "DELIVERED"
    assert StatusChange.objects.filter(order=order).count() == changes
    assert Voucher.objects.filter(status="DELIVERED").count() == 2
    assert WalletEntry.objects.filter(order=order).count() == 1  # the debit, nothing else


def _in_threads(target, args_list):
    errors: list[BaseException] = []
    start = threading.Barrier(len(args_list))

    def run(*args):
        try:
            start.wait(timeout=30)
            target(*args)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a fulfilment thread hung"
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_32_concurrent_orders_share_20_vouchers_without_doubling(buyer, product):
    stock(product, 20)
    orders = [buyer.place(product, f"RUSH-{n}") for n in range(32)]

    errors = _in_threads(lambda pk: order_fulfil(order_id=pk), [(o.pk,) for o in orders])

    assert errors == []
    assert Order.objects.filter(pk__in=[o.pk for o in orders], status="DELIVERED").count() == 32
    inventory = OrderItem.objects.filter(voucher__source=VoucherSource.IMPORT)
    assert inventory.count() == 20
    assert Voucher.objects.filter(source="IMPORT", status="AVAILABLE").count() == 0
    assert Order.objects.filter(sub_status="VENDOR_VOUCHER_FETCHED").count() == 12
    linked = list(OrderItem.objects.exclude(voucher=None).values_list("voucher_id", flat=True))
    assert len(linked) == len(set(linked)) == 32
    assert WalletEntry.objects.filter(kind="ORDER_DEBIT").count() == 32


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_duplicated_task_running_concurrently_allocates_and_charges_once(buyer, product):
    stock(product, 2)
    order = buyer.place(product, "DUP-1", quantity=4)  # 2 from inventory, 2 from the vendor

    errors = _in_threads(lambda pk: order_fulfil(order_id=pk), [(order.pk,)] * 6)
    order_fulfil(order_id=order.pk)  # and once more, late

    order.refresh_from_db()
    assert errors == []
    assert (order.status, order.sub_status) == ("DELIVERED", "VENDOR_VOUCHER_FETCHED")
    assert Voucher.objects.filter(order_item__order=order).count() == 4
    assert Voucher.objects.filter(source="VENDOR").count() == 2
    assert order.status_changes.filter(to_sub_status="PROCESSING").count() == 1
    assert WalletEntry.objects.filter(order=order).count() == 1
    assert order.vendor_order_ref.startswith("SIM-") and idempotency_key(order=order)


@pytest.mark.django_db
def test_a_vendor_reference_the_simulator_never_issued_is_rejected(buyer, product):
    order = buyer.place(product, "FOREIGN-REF-1")
    # e.g. imported from elsewhere: not a reference the simulated vendor gave out
    order.items.update(vendor_ref="external")
    Order.objects.filter(pk=order.pk).update(vendor_order_ref="SIM-291392210")

    order = order_fulfil(order_id=order.pk)

    assert (order.status, order.sub_status) == ("FAILED", "REFUNDED")
    assert "unknown vendor order reference" in order.failure_reason
    assert not Voucher.objects.filter(source="VENDOR").exists()
