"""The sealer: audit events are written unsealed (one INSERT, no lock) and linked
into their keyed chains later, in batches, once each, by as many sealers as run."""

from __future__ import annotations

import threading
from decimal import Decimal
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import AuditChainHead, AuditEvent
from orders.selectors.audit import audit_seal_lag
from orders.services.actors import Actor
from orders.services.audit import (
    AuditEntry,
    audit_chain_problems,
    audit_record,
    audit_records,
    audit_seal,
)
from tests.helpers.audit import seal_all, sealed

pytestmark = pytest.mark.django_db


def _record(count: int, *, orders: int = 5, actor: Actor | None = None) -> list[AuditEvent]:
    who = actor or Actor.system("test")
    return [
        audit_record(action="voucher.reveal", actor=who, order_id=100 + n % orders, data={"n": n})
        for n in range(count)
    ]


def _chains_are_complete() -> None:
    """Every event sealed, each chain numbered 1..n without a gap, its head on its last."""
    assert not AuditEvent.objects.filter(sealed_at__isnull=True).exists()
    assert list(audit_chain_problems()) == []
    for head in AuditChainHead.objects.all():
        seqs = list(
            AuditEvent.objects.filter(chain=head.chain)
            .order_by("seq")
            .values_list("seq", flat=True)
        )
        assert seqs == list(range(1, head.seq + 1))


# --- Recording ---------------------------------------------------------------------


def test_recording_an_event_is_one_insert_without_lock_or_savepoint(system_actor):
    with CaptureQueriesContext(connection) as queries:
        event = audit_record(action="order.read", actor=system_actor, order_id=1)

    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert sql.startswith("INSERT INTO")
    assert (event.seq, event.prev_hash, event.hash, event.sealed_at) == (None, "", "", None)
    assert AuditChainHead.objects.count() == 0  # no head touched while recording


def test_many_events_are_recorded_with_one_insert_and_sealed_like_single_ones(system_actor):
    entries = [
        AuditEntry(action="voucher.deliver", actor=system_actor, order_id=9, voucher_id=v)
        for v in range(1, 31)
    ]
    with CaptureQueriesContext(connection) as queries:
        assert audit_records(entries) == 30

    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    seal_all()
    events = AuditEvent.objects.order_by("seq")
    assert [e.voucher_id for e in events] == list(range(1, 31))  # one order: one chain
    assert [e.seq for e in events] == list(range(1, 31))
    assert {(e.action, e.actor_label, str(e.data)) for e in events} == {
        ("voucher.deliver", "test", "{}")
    }
    _chains_are_complete()
    assert audit_records([]) == 0


# --- Sealing -----------------------------------------------------------------------


def test_the_sealer_links_every_event_once_and_running_it_again_seals_nothing(
    system_actor, django_capture_on_commit_callbacks, _audit_checkpoints
):
    events = _record(40)
    with django_capture_on_commit_callbacks(execute=True):
        assert seal_all() == 40
    hashes = dict(AuditEvent.objects.values_list("pk", "hash"))
    lines = _audit_checkpoints.read_text().splitlines()

    with django_capture_on_commit_callbacks(execute=True):
        assert audit_seal() == 0

    assert dict(AuditEvent.objects.values_list("pk", "hash")) == hashes
    assert _audit_checkpoints.read_text().splitlines() == lines  # nothing new to checkpoint
    chains = {e.chain for e in events}
    assert len(lines) == len(chains)  # one checkpoint per chain per sealed batch
    _chains_are_complete()


def test_a_sealer_seals_at_most_its_limit_and_the_next_round_goes_on(system_actor):
    _record(30, orders=3)

    assert audit_seal(limit=10) == 10
    assert audit_seal_lag().unsealed == 20
    assert audit_seal(limit=100) == 20
    _chains_are_complete()


def test_events_recorded_after_a_seal_continue_their_chain(system_actor):
    (first,) = sealed(audit_record(action="a", actor=system_actor, order_id=3))
    (second,) = sealed(audit_record(action="b", actor=system_actor, order_id=3))

    assert (second.seq, second.prev_hash) == (first.seq + 1, first.hash)
    _chains_are_complete()


def test_the_seal_lag_counts_the_unsealed_events_and_dates_the_oldest(system_actor):
    assert (audit_seal_lag().unsealed, audit_seal_lag().oldest_at) == (0, None)
    events = _record(3)

    lag = audit_seal_lag()
    assert lag.unsealed == 3
    assert lag.oldest_at == min(e.created_at for e in events)
    assert lag.age_seconds(now=lag.oldest_at) == 0.0

    seal_all()
    assert audit_seal_lag().unsealed == 0
    assert audit_seal_lag().age_seconds() == 0.0


# --- check_audit_chain and the backlog ---------------------------------------------


def _check(*args: str) -> str:
    out = StringIO()
    call_command("check_audit_chain", *args, stdout=out)
    return out.getvalue()


def test_check_audit_chain_reports_the_unsealed_backlog_and_passes_within_the_lag(system_actor):
    _record(2)
    seal_all()
    _record(3)

    out = _check()

    assert "seal backlog: 3 event(s) not sealed yet, oldest" in out
    assert "audit chain OK: 2 events in" in out  # the sealed ones are verified


def test_check_audit_chain_fails_when_the_backlog_is_older_than_the_max_lag(system_actor, settings):
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = 0
    _record(2)
    out = StringIO()

    with pytest.raises(CommandError, match="audit seal lag"):
        call_command("check_audit_chain", stdout=out)

    assert "PROBLEM seal lag" in out.getvalue()
    assert "is the worker's sealer running?" in out.getvalue()


def test_check_audit_chain_seal_seals_first(system_actor, settings):
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = 0
    _record(4)

    out = _check("--seal")

    assert "sealed 4 event(s) first" in out
    assert "seal backlog: none" in out
    assert "audit chain OK: 4 events in" in out


# --- Two sealers at once (PostgreSQL: row locks, SKIP LOCKED) ------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_chain_locked_by_another_sealer_is_skipped_not_waited_for(system_actor, owner_db):
    events = _record(20, orders=4)
    seal_all()  # every head exists now
    later = _record(8, orders=4)
    busy = later[0].chain
    with owner_db.transaction():  # another sealer holds this chain's head
        owner_db.execute("SELECT 1 FROM orders_auditchainhead WHERE chain = %s FOR UPDATE", [busy])

        sealed_now = audit_seal()

        unsealed = set(
            AuditEvent.objects.filter(sealed_at__isnull=True).values_list("chain", flat=True)
        )
        assert unsealed == {busy}
        assert sealed_now == sum(1 for e in later if e.chain != busy)
    assert audit_seal() == sum(1 for e in later if e.chain == busy)
    assert len(events) + len(later) == AuditEvent.objects.filter(sealed_at__isnull=False).count()
    _chains_are_complete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sealers_at_once_seal_every_event_exactly_once_while_events_keep_coming():
    writers, per_writer, sealers = 3, 40, 2
    barrier = threading.Barrier(writers + sealers)
    writing = threading.Event()
    errors: list[BaseException] = []
    counts: list[int] = []

    def write(worker: int) -> None:
        try:
            barrier.wait(timeout=10)
            _record(per_writer, orders=6, actor=Actor.system(f"writer-{worker}"))
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    def seal() -> None:
        total = 0
        try:
            barrier.wait(timeout=10)
            while True:
                done = writing.is_set()
                total += audit_seal(limit=7)  # small batches: many rounds side by side
                if done and not AuditEvent.objects.filter(sealed_at__isnull=True).exists():
                    break
        except BaseException as exc:
            errors.append(exc)
        finally:
            counts.append(total)
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    sealing = [threading.Thread(target=seal) for _ in range(sealers)]
    for thread in [*threads, *sealing]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    writing.set()
    for thread in sealing:
        thread.join(timeout=60)

    assert errors == []
    total = writers * per_writer
    assert sum(counts) == total  # each event sealed by exactly one of them
    assert AuditEvent.objects.count() == total
    _chains_are_complete()
    out = StringIO()
    call_command("check_audit_chain", stdout=out)
    assert f"audit chain OK: {total} events" in out.getvalue()


# --- The trigger: the one UPDATE it allows (PostgreSQL) ------------------------------


def _refused(owner: psycopg.Connection[Any], sql: str, params: list[Any]) -> str:
    with pytest.raises(psycopg.Error) as caught:
        owner.execute(sql, params)
    return str(caught.value)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_trigger_allows_sealing_an_unsealed_event_once_and_nothing_else(system_actor, owner_db):
    seal = "UPDATE orders_auditevent SET seq = 1, hash = 'h', sealed_at = now() WHERE id = %s"
    first, second = _record(2)

    # Content changed while sealing, a seal without a seq: refused, even to the owner.
    assert "append-only: UPDATE" in _refused(
        owner_db,
        "UPDATE orders_auditevent SET seq = 1, hash = 'h', sealed_at = now(), reason = 'x'"
        " WHERE id = %s",
        [first.pk],
    )
    assert "append-only: UPDATE" in _refused(
        owner_db, "UPDATE orders_auditevent SET sealed_at = now() WHERE id = %s", [first.pk]
    )
    assert "append-only: UPDATE" in _refused(
        owner_db, "UPDATE orders_auditevent SET data = '{}' WHERE id = %s", [second.pk]
    )
    assert "append-only: DELETE" in _refused(
        owner_db, "DELETE FROM orders_auditevent WHERE id = %s", [second.pk]
    )
    # The seal itself, with only the seal's columns: allowed once.
    owner_db.execute(seal, [first.pk])
    # A second seal, or any change to a sealed event: refused.
    assert "append-only: UPDATE" in _refused(owner_db, seal, [first.pk])
    assert "append-only: UPDATE" in _refused(
        owner_db, "UPDATE orders_auditevent SET hash = 'other' WHERE id = %s", [first.pk]
    )
    assert "append-only: UPDATE" in _refused(
        owner_db, "UPDATE orders_auditevent SET reason = 'x' WHERE id = %s", [first.pk]
    )
    assert "append-only: DELETE" in _refused(
        owner_db, "DELETE FROM orders_auditevent WHERE id = %s", [first.pk]
    )
    assert "append-only: TRUNCATE" in _refused(owner_db, "TRUNCATE orders_auditevent", [])

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.seq, first.hash, first.reason) == (1, "h", "")
    assert (second.sealed_at, second.data) == (None, {"n": 1})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_audit_chain_catches_a_sealed_event_changed_behind_the_trigger(owner_db):
    events = sealed(*_record(6, orders=1))
    target = events[2]
    with owner_db.transaction():
        owner_db.execute(
            "ALTER TABLE orders_auditevent DISABLE TRIGGER orders_auditevent_no_update_delete"
        )
        owner_db.execute(
            "UPDATE orders_auditevent SET data = %s WHERE id = %s", ['{"n": 99}', target.pk]
        )
        owner_db.execute(
            "ALTER TABLE orders_auditevent ENABLE TRIGGER orders_auditevent_no_update_delete"
        )
    _record(2)  # and a backlog, reported alongside

    out = StringIO()
    with pytest.raises(CommandError, match="audit chain broken: 1 problem"):
        call_command("check_audit_chain", stdout=out)

    assert (
        f"PROBLEM chain {target.chain} seq {target.seq} (event {target.pk}): "
        "content changed after it was written" in out.getvalue()
    )
    assert "seal backlog: 2 event(s) not sealed yet" in out.getvalue()


def test_bulk_recorded_events_keep_who_from_where_and_their_data_and_verify():
    actor = Actor(
        label="api:acme", user=None, credential=None, ip_address="10.1.2.3", user_agent="ua"
    )
    audit_records(
        [
            AuditEntry(
                "voucher.deliver", actor, order_id=5, voucher_id=1, data={"amount": Decimal("1.50")}
            ),
            AuditEntry("voucher.deliver", actor, voucher_id=2, reason="r" * 600),
        ]
    )
    seal_all()

    first, second = AuditEvent.objects.order_by("voucher_id")
    assert (first.ip_address, first.user_agent, first.data) == (
        "10.1.2.3",
        "ua",
        {"amount": "1.50"},
    )
    assert (second.order_id, len(second.reason)) == (None, 500)
    assert list(audit_chain_problems()) == []
