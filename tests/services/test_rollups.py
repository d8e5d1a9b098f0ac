"""The dashboard's rollups: built from the raw rows, refreshed incrementally by
the worker's sweep, equal to what the pages computed from the raw rows, and
checked by `manage.py check_rollups`."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from orders.enums import OrderStatus
from orders.models import (
    LedgerDayRollup,
    Order,
    OrderStatusHourRollup,
    VoucherRollup,
    WalletBalanceRollup,
    WalletEntry,
)
from orders.selectors.inventory import stock_overview
from orders.selectors.overview import dashboard_overview
from orders.selectors.reconciliation import (
    ledger_mismatches_as_of,
    reconciliation,
    reconciliation_report,
)
from orders.services.clients import client_create
from orders.services.fulfilment import order_cancel, order_fulfil
from orders.services.placing import Customer, order_create
from orders.services.recovery import maintenance_sweep
from orders.services.refunds import refund_approve
from orders.services.rollups import _LOCK_KEY, rollups_differences, rollups_refresh
from orders.services.wallets import ledger_mismatches
from tests.factories import ProductFactory, refundable_order, stock
from tests.helpers.rollups import forgotten, refreshed, rollup_tables

pytestmark = pytest.mark.django_db

_refs = iter(range(1, 10**6))


@pytest.fixture
def shop(system_actor):
    client, _wallet, _ = client_create(
        name="Rollup Rewards", currency="USD", balance="5000.00", actor=system_actor
    )
    product = ProductFactory(name="Nebula Books", denominations=["25.00", "50.00"])
    stock(product, 12, denomination="25.00")
    stock(product, 3, denomination="50.00")

    def place(quantity: int = 1, denomination: str = "25.00") -> Order:
        return order_create(
            client=client,
            actor=system_actor,
            product_id=product.pk,
            denomination=denomination,
            quantity=quantity,
            reference_code=f"ROLL-{next(_refs)}",
            customer=Customer(name="Ada", email="ada@example.com"),
        ).order

    return client, product, place


def _age(order: Order, *, hours: float) -> None:
    """Move an order (and its ledger entries) `hours` into the past, touching
    `updated_at` as every writer of an order does."""
    then = timezone.now() - timedelta(hours=hours)
    Order.objects.filter(pk=order.pk).update(placed_at=then, updated_at=timezone.now())
    WalletEntry.objects.filter(order=order).update(created_at=then)


def _pages() -> tuple[object, ...]:
    """What the overview, stock and reconciliation pages show (the clock aside)."""
    overview = dashboard_overview(now=timezone.now().replace(microsecond=0))
    figures = (
        overview.today_by_status,
        overview.delivered_7d,
        overview.terminal_7d,
        overview.median_delivery_seconds,
        list(overview.refund_backlog),
        overview.low_stock,
        list(overview.orders_per_hour),
        overview.deliveries_by_product,
    )
    return figures, stock_overview(), reconciliation(days=30)


def _activity(place, system_actor) -> list[Order]:
    """Orders delivered from stock, one delivered and refunded in part, one
    cancelled, one failed and refunded after approval: through the services."""
    done = [order_fulfil(order_id=place(quantity=2).pk), order_fulfil(order_id=place().pk)]
    # More units than the 50.00 stock holds: the simulated vendor covers the rest.
    done.append(order_fulfil(order_id=place(quantity=4, denomination="50.00").pk))
    open_order = place()
    done.append(order_cancel(order_id=open_order.pk, actor=system_actor, reason="test"))
    failed = refundable_order(amount="25.00")
    done.append(refund_approve(order_id=failed.pk, actor=system_actor))
    return done


def test_rollups_equal_the_raw_figures_after_orders_are_placed_delivered_refunded(
    shop, system_actor
):
    _client, _product, place = shop
    older = _activity(place, system_actor)
    for hours, order in zip([3, 30, 30, 50, 26 * 24], older, strict=True):
        _age(order, hours=hours)
    raw = _pages()
    assert refreshed() > 0  # the first run builds everything
    assert _pages() == raw
    assert reconciliation_report(days=30).rows == reconciliation(days=30)

    # Later activity, and a change to an old order, reach the rollups on the next run.
    newer = _activity(place, system_actor)
    _age(newer[0], hours=2)
    Order.objects.filter(pk=older[-1].pk).update(  # a status change days later
        status=OrderStatus.FAILED, updated_at=timezone.now()
    )
    refreshed()
    check = rollups_differences()
    assert check.differences == [] and check.pending_buckets == 0
    rolled = _pages()
    report = reconciliation_report(days=30)
    assert report.as_of is not None and report.rows == reconciliation(days=30)
    assert ledger_mismatches_as_of() == [] and ledger_mismatches() == []
    forgotten()
    assert rolled == _pages()  # the same figures straight from the raw rows


def test_refresh_is_idempotent_and_a_full_rebuild_changes_nothing(shop, system_actor):
    _client, _product, place = shop
    _activity(place, system_actor)
    refreshed()
    first = rollup_tables()
    refreshed()
    assert rollup_tables() == first
    rollups_refresh(full=True)
    assert rollup_tables() == first
    assert sum(len(rows) for rows in first.values()) > 0


def test_new_orders_show_on_the_overview_before_the_next_refresh(shop, system_actor):
    _client, _product, place = shop
    refreshed()
    order_fulfil(order_id=place().pk)
    overview = dashboard_overview()
    assert overview.as_of is not None
    assert dict(overview.today_by_status)[OrderStatus.DELIVERED] == 1  # the live tail
    assert overview.deliveries_by_product == [("Nebula Books", 1)]


def test_check_rollups_reports_a_changed_or_missing_rollup_row(shop, system_actor, capsys):
    _client, _product, place = shop
    for order in _activity(place, system_actor):
        _age(order, hours=30)
    with pytest.raises(CommandError, match="not built"):
        call_command("check_rollups")
    refreshed()
    call_command("check_rollups")
    assert "rollups OK" in capsys.readouterr().out

    hour = OrderStatusHourRollup.objects.order_by("hour").first()
    assert hour is not None
    OrderStatusHourRollup.objects.filter(pk=hour.pk).update(orders=hour.orders + 1)
    day = LedgerDayRollup.objects.order_by("day").first()
    assert day is not None
    LedgerDayRollup.objects.filter(pk=day.pk).update(total=day.total + Decimal("0.01"))
    VoucherRollup.objects.filter(status="DELIVERED").delete()  # both denominations
    with pytest.raises(CommandError, match="4 row"):
        call_command("check_rollups")
    out = capsys.readouterr().out
    assert "orders_orderstatushourrollup" in out
    assert "orders_ledgerdayrollup" in out
    assert "orders_voucherrollup" in out
    # The next refresh does not see the damage (no raw row changed); a full one repairs it.
    rollups_refresh(full=True)
    call_command("check_rollups")


def test_check_rollups_reports_a_wallet_whose_rollup_balance_differs(shop, system_actor):
    _client, _product, place = shop
    _activity(place, system_actor)
    refreshed()
    assert ledger_mismatches_as_of() == []
    row = WalletBalanceRollup.objects.order_by("wallet_id").first()
    assert row is not None
    WalletBalanceRollup.objects.filter(pk=row.pk).update(balance=row.balance + 1)
    mismatches = ledger_mismatches_as_of()
    assert mismatches is not None and [m.wallet_id for m in mismatches] == [row.wallet_id]
    with pytest.raises(CommandError, match="1 row"):
        call_command("check_rollups")


def test_changes_since_the_last_refresh_are_pending_not_differences(shop, system_actor):
    _client, _product, place = shop
    refreshed()
    order_fulfil(order_id=place().pk)
    check = rollups_differences()
    assert check.differences == [] and check.pending_buckets > 0


def test_the_maintenance_sweep_refreshes_the_rollups(shop, system_actor):
    _client, _product, place = shop
    order_fulfil(order_id=place().pk)
    assert maintenance_sweep()["rollup_rows"] > 0
    assert rollups_differences().differences == []


@pytest.mark.postgres
def test_a_refresh_skips_its_turn_while_another_one_runs(shop, system_actor):
    _client, _product, place = shop
    order_fulfil(order_id=place().pk)
    held, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        other = connections.create_connection("default")
        try:
            other.set_autocommit(False)
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
                held.set()
                release.wait(10)
            other.rollback()
        finally:
            other.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        assert rollups_refresh() == 0  # skipped: the other refresh does the work
    finally:
        release.set()
        thread.join()
    assert rollups_refresh() > 0
    assert rollups_differences().differences == []
