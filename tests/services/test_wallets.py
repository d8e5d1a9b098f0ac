"""Wallets: exact money within the columns' range, no overdraft (even under concurrency),
balance == ledger, and a second approver for large top-ups and adjustments."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from orders.enums import WalletEntryKind
from orders.errors import (
    CreditNeedsSecondApprover,
    CreditOwnRequest,
    CreditRequestDecided,
    InsufficientFunds,
    InvalidAmount,
    ValidationFailed,
)
from orders.models import AuditEvent, Order, Wallet, WalletCreditRequest, WalletEntry
from orders.services.actors import Actor
from orders.services.wallets import (
    ledger_mismatches,
    money,
    wallet_adjust,
    wallet_credit_decide,
    wallet_credit_request,
    wallet_debit,
    wallet_refund,
    wallet_top_up,
)
from tests.factories import OrderFactory, UserFactory, WalletFactory

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


# --- Money range -----------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [
        "999999999999.999",
        "1000000000000.00",
        "-1000000000000.00",
        "1e400",
        "-1e400",
        "1e999999999999",
        "NaN",
        "sNaN",
        "-Infinity",
    ],
)
def test_money_refuses_what_no_amount_column_can_hold(amount):
    with pytest.raises(InvalidAmount):
        money(amount)


def test_the_money_bound_comes_from_the_amount_columns():
    assert money("999999999999.99") == Decimal("999999999999.99")
    assert money("-999999999999.99") == Decimal("-999999999999.99")


def test_a_credit_that_would_overflow_the_balance_is_refused(wallet, system_actor):
    with pytest.raises(InvalidAmount, match="largest balance a wallet can hold"):
        wallet_top_up(
            wallet_id=wallet.pk, amount="999999999999.99", actor=system_actor, note="overflow"
        )

    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert WalletEntry.objects.filter(wallet=wallet).count() == 1


# --- Maker-checker on money in ----------------------------------------------------


@pytest.fixture
def _credit_limit(settings):
    settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT = Decimal("1000.00")


def _staff(name: str, role: str = "finance") -> Actor:
    return Actor.for_user(UserFactory(username=name, role=role))


@pytest.mark.usefixtures("_credit_limit")
def test_a_top_up_up_to_the_limit_moves_money_at_once(wallet):
    outcome = wallet_credit_request(
        wallet_id=wallet.pk, kind="TOP_UP", amount="1000.00", actor=_staff("fin-a"), reason="Wire"
    )

    assert outcome.entry is not None and outcome.request is None
    assert outcome.message == "Top-up: 1000.00 USD, balance now 1100.00."
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("1100.00")
    assert not WalletCreditRequest.objects.exists()


@pytest.mark.usefixtures("_credit_limit")
def test_a_top_up_above_the_limit_waits_for_a_different_user():
    wallet = WalletFactory(currency="USD")
    maker, checker = _staff("fin-a"), _staff("fin-b")

    outcome = wallet_credit_request(
        wallet_id=wallet.pk, kind="TOP_UP", amount="1000000.00", actor=maker, reason="goodwill"
    )

    request = outcome.request
    assert request is not None and outcome.entry is None
    assert "waiting for a second approver" in outcome.message
    assert (request.status, request.amount, request.requested_by_id) == (
        WalletCreditRequest.Status.PENDING,
        Decimal("1000000.00"),
        maker.user_id,
    )
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00") and not WalletEntry.objects.filter(wallet=wallet)
    asked = AuditEvent.objects.get(action="wallet.credit_request")
    assert asked.reason == "goodwill"
    assert asked.data["amount"] == "1000000.00" and asked.data["request_id"] == request.pk

    with pytest.raises(CreditOwnRequest, match="must come from a different user"):
        wallet_credit_decide(request_id=request.pk, actor=maker, decision="APPROVE", note="")
    request.refresh_from_db()
    assert request.status == WalletCreditRequest.Status.PENDING
    assert not WalletEntry.objects.filter(wallet=wallet).exists()

    done = wallet_credit_decide(
        request_id=request.pk, actor=checker, decision="APPROVE", note="contract 7"
    )

    assert done.entry is not None and done.message == (
        f"Credit request {request.pk}: top-up of 1000000.00 USD approved, balance now 1000000.00."
    )
    request.refresh_from_db()
    assert request.status == WalletCreditRequest.Status.APPROVED
    assert (request.decided_by_id, request.entry_id) == (checker.user_id, done.entry.pk)
    entry = WalletEntry.objects.get(wallet=wallet)
    assert (entry.kind, entry.amount, entry.note) == (
        WalletEntryKind.TOP_UP,
        Decimal("1000000.00"),
        "goodwill",
    )
    approved = AuditEvent.objects.get(action="wallet.credit_approve")
    assert approved.data["requested_by_id"] == maker.user_id
    assert approved.data["amount"] == "1000000.00" and approved.reason == "contract 7"
    assert AuditEvent.objects.filter(action="wallet.top_up", data__entry_id=entry.pk).exists()

    with pytest.raises(CreditRequestDecided):
        wallet_credit_decide(
            request_id=request.pk, actor=_staff("fin-c"), decision="APPROVE", note=""
        )
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("1000000.00") == _ledger_total(wallet)


@pytest.mark.usefixtures("_credit_limit")
def test_a_large_negative_adjustment_also_needs_a_second_approver(wallet):
    wallet_adjust(wallet_id=wallet.pk, amount="5000.00", actor=Actor.system("t"), reason="seed")
    outcome = wallet_credit_request(
        wallet_id=wallet.pk,
        kind="ADJUSTMENT",
        amount="-1500.00",
        actor=_staff("root-a", "admin"),
        reason="Duplicate wire",
    )
    assert outcome.request is not None
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("5100.00")

    done = wallet_credit_decide(
        request_id=outcome.request.pk, actor=_staff("root-b", "admin"), decision="APPROVE", note=""
    )
    assert done.entry is not None and done.entry.kind == WalletEntryKind.ADJUSTMENT
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("3600.00") == _ledger_total(wallet)


@pytest.mark.usefixtures("_credit_limit")
def test_a_reject_needs_a_note_moves_nothing_and_is_audited(wallet):
    request = wallet_credit_request(
        wallet_id=wallet.pk, kind="TOP_UP", amount="2000.00", actor=_staff("fin-a"), reason="x"
    ).request
    assert request is not None
    checker = _staff("fin-b")

    with pytest.raises(ValidationFailed, match="needs a note"):
        wallet_credit_decide(request_id=request.pk, actor=checker, decision="REJECT", note=" ")

    done = wallet_credit_decide(
        request_id=request.pk, actor=checker, decision="REJECT", note="no contract"
    )
    assert done.entry is None and "rejected" in done.message
    request.refresh_from_db()
    assert request.status == WalletCreditRequest.Status.REJECTED
    assert request.decision_note == "no contract"
    event = AuditEvent.objects.get(action="wallet.credit_reject")
    assert event.reason == "no contract" and event.data["amount"] == "2000.00"
    with pytest.raises(CreditRequestDecided):
        wallet_credit_decide(request_id=request.pk, actor=checker, decision="APPROVE", note="")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


@pytest.mark.usefixtures("_credit_limit")
def test_a_request_that_would_overflow_the_balance_is_refused_at_once(wallet):
    with pytest.raises(InvalidAmount, match="largest balance a wallet can hold"):
        wallet_credit_request(
            wallet_id=wallet.pk,
            kind="TOP_UP",
            amount="999999999999.99",
            actor=_staff("fin-a"),
            reason="overflow",
        )
    assert not WalletCreditRequest.objects.exists()


@pytest.mark.usefixtures("_credit_limit")
@pytest.mark.parametrize(
    ("call", "amount"),
    [("top_up", "1000.01"), ("adjust", "-1000.01"), ("adjust", "250000.00")],
)
def test_staff_cannot_skip_the_second_approver_through_the_ledger_services(wallet, call, amount):
    actor = _staff("fin-a", "admin")
    with pytest.raises(CreditNeedsSecondApprover, match="second approver"):
        if call == "top_up":
            wallet_top_up(wallet_id=wallet.pk, amount=amount, actor=actor, note="direct")
        else:
            wallet_adjust(wallet_id=wallet.pk, amount=amount, actor=actor, reason="direct")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


def test_the_database_refuses_a_request_approved_by_its_maker(wallet):
    user = UserFactory(username="fin-a")
    request = WalletCreditRequest.objects.create(
        wallet=wallet, kind="TOP_UP", amount=Decimal("5000.00"), reason="x", requested_by=user
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        WalletCreditRequest.objects.filter(pk=request.pk).update(
            status=WalletCreditRequest.Status.APPROVED,
            decided_by=user,
            entry=WalletEntry.objects.get(wallet=wallet),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        WalletCreditRequest.objects.filter(pk=request.pk).update(
            status=WalletCreditRequest.Status.APPROVED, decided_by=UserFactory(username="fin-b")
        )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_checkers_approving_at_the_same_moment_move_money_once(settings):
    settings.WALLET_CREDIT_SECOND_APPROVAL_LIMIT = Decimal("1000.00")
    wallet = WalletFactory(currency="USD")
    # No role: an earlier transactional test may have flushed the groups; the
    # service checks no permission (the view does).
    maker, *checkers = (Actor.for_user(UserFactory(username=n)) for n in ("m", "c1", "c2"))
    request = wallet_credit_request(
        wallet_id=wallet.pk, kind="TOP_UP", amount="5000.00", actor=maker, reason="wire"
    ).request
    assert request is not None
    barrier = threading.Barrier(len(checkers))
    approved, refused, errors = [], [], []
    lock = threading.Lock()

    def approve(actor: Actor) -> None:
        try:
            barrier.wait(timeout=10)
            result = wallet_credit_decide(
                request_id=request.pk, actor=actor, decision="APPROVE", note=""
            )
            with lock:
                approved.append(result)
        except CreditRequestDecided as refusal:
            with lock:
                refused.append(refusal)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(a,)) for a in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert (len(approved), len(refused)) == (1, 1)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("5000.00") == _ledger_total(wallet)
    assert WalletEntry.objects.filter(wallet=wallet).count() == 1
    assert AuditEvent.objects.filter(action="wallet.credit_approve").count() == 1
