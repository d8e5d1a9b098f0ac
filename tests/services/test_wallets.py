"""Wallets: exact money, no overdraft (even under concurrency), balance == ledger."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from orders.enums import WalletEntryKind
from orders.errors import InsufficientFunds, InvalidAmount
from orders.models import AuditEvent, Order, Wallet, WalletEntry
from orders.services.actors import Actor
from orders.services.wallets import (
    ledger_mismatches,
    money,
    wallet_adjust,
    wallet_debit,
    wallet_refund,
    wallet_top_up,
)
from tests.factories import OrderFactory, WalletFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(system_actor) -> Wallet:
    wallet = WalletFactory(currency="USD")
    wallet_top_up(wallet_id=wallet.pk, amount="100.00", actor=system_actor, note="Opening")
    wallet.refresh_from_db()
    return wallet


def _ledger_total(wallet: Wallet) -> Decimal:
    # Summed in Python: each amount loads exactly, while SQLite's SUM() uses floats.
    amounts = WalletEntry.objects.filter(wallet=wallet).values_list("amount", flat=True)
    return sum(amounts, Decimal("0.00"))


def test_top_up_credits_and_is_audited(wallet, system_actor):
    entry = wallet_top_up(wallet_id=wallet.pk, amount="25.50", actor=system_actor, note="Wire")

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("125.50") == _ledger_total(wallet)
    assert (entry.kind, entry.amount, entry.balance_after) == (
        WalletEntryKind.TOP_UP,
        Decimal("25.50"),
        Decimal("125.50"),
    )
    assert AuditEvent.objects.filter(action="wallet.top_up", data__entry_id=entry.pk).exists()


def test_debit_within_balance_writes_one_entry(wallet, system_actor):
    order = OrderFactory(client=wallet.client)

    entry = wallet_debit(wallet_id=wallet.pk, amount="99.99", actor=system_actor, order=order)

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.01") == _ledger_total(wallet)
    # 100.00 - 99.99 is not exactly 0.01 in floating point; the check must not care.
    assert ledger_mismatches() == []
    assert (entry.kind, entry.amount, entry.order) == (
        WalletEntryKind.ORDER_DEBIT,
        Decimal("-99.99"),
        order,
    )


def test_debit_beyond_the_balance_is_refused_and_writes_nothing(wallet, system_actor):
    entries_before = WalletEntry.objects.count()

    with pytest.raises(InsufficientFunds) as excinfo:
        wallet_debit(wallet_id=wallet.pk, amount="100.01", actor=system_actor)

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert WalletEntry.objects.count() == entries_before
    assert "100.00 USD available" in excinfo.value.message
    assert "100.01 USD required" in excinfo.value.message


def test_refund_gives_money_back_once_per_order(wallet, system_actor):
    order = OrderFactory(client=wallet.client)
    wallet_debit(wallet_id=wallet.pk, amount="40.00", actor=system_actor, order=order)
    wallet_refund(wallet_id=wallet.pk, amount="40.00", actor=system_actor, order=order)

    with pytest.raises(IntegrityError), transaction.atomic():
        wallet_refund(wallet_id=wallet.pk, amount="40.00", actor=system_actor, order=order)

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00") == _ledger_total(wallet)
    assert WalletEntry.objects.filter(order=order, kind=WalletEntryKind.REFUND).count() == 1


def test_adjustment_needs_a_reason_and_cannot_overdraw(wallet, system_actor):
    with pytest.raises(InvalidAmount):
        wallet_adjust(wallet_id=wallet.pk, amount="-5.00", actor=system_actor, reason="  ")
    with pytest.raises(InsufficientFunds):
        wallet_adjust(wallet_id=wallet.pk, amount="-100.01", actor=system_actor, reason="Fix")

    wallet_adjust(wallet_id=wallet.pk, amount="-5.00", actor=system_actor, reason="Bank fee")

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("95.00") == _ledger_total(wallet)


@pytest.mark.parametrize("amount", [10.5, 0.1, 1e2])
def test_floats_are_refused(wallet, system_actor, amount):
    with pytest.raises(InvalidAmount, match="not a float"):
        wallet_debit(wallet_id=wallet.pk, amount=amount, actor=system_actor)

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


@pytest.mark.parametrize("amount", ["10.005", "0.001", Decimal("1.999")])
def test_more_than_two_decimals_are_refused(wallet, system_actor, amount):
    with pytest.raises(InvalidAmount, match="more than 2 decimal places"):
        wallet_top_up(wallet_id=wallet.pk, amount=amount, actor=system_actor)

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


@pytest.mark.parametrize("amount", ["0", "0.00", "-1.00", "abc", "", "NaN", "Infinity"])
def test_zero_negative_and_garbage_amounts_are_refused(wallet, system_actor, amount):
    with pytest.raises(InvalidAmount):
        wallet_debit(wallet_id=wallet.pk, amount=amount, actor=system_actor)

    assert WalletEntry.objects.filter(wallet=wallet).count() == 1


def test_money_keeps_exact_cents():
    assert money("19.90") == Decimal("19.90")
    assert money(Decimal("7")) == Decimal("7.00")
    assert money(" 1.5 ") == Decimal("1.50")


def test_ledger_mismatch_is_reported(wallet):
    assert ledger_mismatches() == []

    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_wallet SET balance = %s WHERE id = %s", ["90.00", wallet.pk])

    (mismatch,) = ledger_mismatches()
    assert (mismatch.wallet_id, mismatch.balance, mismatch.entries_total) == (
        wallet.pk,
        Decimal("90.00"),
        Decimal("100.00"),
    )


def _debit_concurrently(*, wallet_id: int, amount: str, workers: int) -> tuple[int, int, list]:
    """Start `workers` debits at once; return (succeeded, refused, unexpected errors)."""
    barrier = threading.Barrier(workers)
    lock = threading.Lock()
    outcome = {"ok": 0, "refused": 0}
    errors: list[BaseException] = []
    actor = Actor.system("concurrency-test")

    def debit() -> None:
        try:
            barrier.wait(timeout=10)
            wallet_debit(wallet_id=wallet_id, amount=amount, actor=actor)
            with lock:
                outcome["ok"] += 1
        except InsufficientFunds:
            with lock:
                outcome["refused"] += 1
        except BaseException as exc:  # reported by the caller's assert
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=debit) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcome["ok"], outcome["refused"], errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("workers", "balance", "amount", "affordable"),
    [
        (2, "50.00", "30.00", 1),
        (8, "100.00", "30.00", 3),
        (8, "240.00", "30.00", 8),
    ],
)
def test_concurrent_debits_cannot_overdraw(workers, balance, amount, affordable):
    wallet = WalletFactory(currency="EUR")
    wallet_top_up(wallet_id=wallet.pk, amount=balance, actor=Actor.system("test"))

    succeeded, refused, errors = _debit_concurrently(
        wallet_id=wallet.pk, amount=amount, workers=workers
    )

    assert errors == []
    assert (succeeded, refused) == (affordable, workers - affordable)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal(balance) - affordable * Decimal(amount)
    assert wallet.balance >= 0
    assert wallet.balance == _ledger_total(wallet)
    debits = WalletEntry.objects.filter(wallet=wallet, kind=WalletEntryKind.ORDER_DEBIT)
    assert debits.count() == affordable
    # Each debit saw the balance the previous one left: balance_after is a clean sequence.
    assert sorted(debits.values_list("balance_after", flat=True)) == [
        Decimal(balance) - n * Decimal(amount) for n in range(affordable, 0, -1)
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_wallet_held_by_a_payment_never_blocks_fulfilment_of_its_orders():
    """While a payment holds the wallet (placing: debit, then audit), fulfilment
    finishing another order of that wallet must not wait for it. Waiting was half
    of a deadlock seen under load: the payment then waited for an audit chain
    that fulfilment held."""
    wallet = WalletFactory(currency="EUR")
    wallet_top_up(wallet_id=wallet.pk, amount="100.00", actor=Actor.system("test"))
    order = OrderFactory(wallet=wallet, client=wallet.client)
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def payment() -> None:
        try:
            with transaction.atomic():
                wallet_debit(
                    wallet_id=wallet.pk, amount="10.00", order=None, actor=Actor.system("test")
                )
                holding.set()
                release.wait(timeout=30)
        except BaseException as error:  # reported by the assert below
            errors.append(error)
        finally:
            holding.set()
            connection.close()

    thread = threading.Thread(target=payment)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            # What fulfilment's last step does: the order row written twice in one
            # transaction, which makes PostgreSQL re-check order.wallet_id.
            Order.objects.filter(pk=order.pk).update(attempts=1)
            Order.objects.filter(pk=order.pk).update(attempts=2)
            WalletEntry.objects.filter(wallet=wallet).exists()
    finally:
        release.set()
        thread.join(timeout=30)
    assert errors == []
    order.refresh_from_db()
    assert order.attempts == 2
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("90.00")
