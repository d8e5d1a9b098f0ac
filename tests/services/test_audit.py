"""The audit trail: append-only in PostgreSQL, and tamper-evident everywhere."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from orders.models import AuditChainHead, AuditEvent
from orders.services.actors import Actor
from orders.services.audit import audit_chain_problems, audit_record

pytestmark = pytest.mark.django_db

TRIGGER = "orders_auditevent_no_update_delete"


def _record_some(actor: Actor, *, count: int = 5) -> list[AuditEvent]:
    return [
        audit_record(
            action="voucher.reveal",
            actor=actor,
            order_id=1000 + n,
            reason=f"Customer ticket #{n}",
            data={"n": n},
        )
        for n in range(count)
    ]


def test_events_of_one_order_form_a_linked_chain(system_actor):
    first = audit_record(action="order.create", actor=system_actor, order_id=7)
    second = audit_record(action="order.cancel", actor=system_actor, order_id=7, reason="asked")

    assert first.chain == second.chain
    assert (first.seq + 1, first.hash) == (second.seq, second.prev_hash)
    head = AuditChainHead.objects.get(chain=first.chain)
    assert (head.seq, head.last_hash) == (second.seq, second.hash)
    assert list(audit_chain_problems()) == []


def test_check_audit_chain_passes_on_an_intact_trail(system_actor):
    _record_some(system_actor)
    out = StringIO()

    call_command("check_audit_chain", stdout=out)

    chains = AuditEvent.objects.order_by().values("chain").distinct().count()
    assert f"audit chain OK: 5 events in {chains} chains" in out.getvalue()


def test_check_audit_chain_catches_a_removed_event_on_any_database(system_actor):
    events = _record_some(system_actor)
    # SQLite has no trigger; on PostgreSQL it must be disabled to delete.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE orders_auditevent DISABLE TRIGGER {TRIGGER}")
        cursor.execute("DELETE FROM orders_auditevent WHERE id = %s", [events[2].pk])
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE orders_auditevent ENABLE TRIGGER {TRIGGER}")

    out = StringIO()
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("check_audit_chain", stdout=out)
    assert "chain head does not match the last event" in out.getvalue()


@pytest.mark.postgres
def test_update_of_an_audit_event_is_refused_by_postgresql(system_actor):
    (event, *_) = _record_some(system_actor, count=1)

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE orders_auditevent SET reason = %s WHERE id = %s", ["edited", event.pk]
        )

    event.refresh_from_db()
    assert event.reason == "Customer ticket #0"


@pytest.mark.postgres
def test_delete_of_an_audit_event_is_refused_by_postgresql(system_actor):
    (event, *_) = _record_some(system_actor, count=1)

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM orders_auditevent WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
def test_check_audit_chain_catches_an_event_changed_behind_the_trigger(system_actor):
    events = _record_some(system_actor)
    target = events[3]
    # Inside this test's transaction: the DDL is rolled back with it.
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE orders_auditevent DISABLE TRIGGER {TRIGGER}")
        try:
            cursor.execute(
                "UPDATE orders_auditevent SET reason = %s WHERE id = %s",
                ["nothing to see here", target.pk],
            )
        finally:
            cursor.execute(f"ALTER TABLE orders_auditevent ENABLE TRIGGER {TRIGGER}")

    problems = list(audit_chain_problems())
    assert [(p.event_id, p.problem) for p in problems] == [
        (target.pk, "content changed after it was written")
    ]
    out = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("check_audit_chain", stdout=out)
    assert f"event {target.pk}" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_records_keep_every_chain_valid():
    workers, per_worker = 8, 12
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def record(worker: int) -> None:
        actor = Actor.system(f"worker-{worker}")
        try:
            barrier.wait(timeout=10)
            for n in range(per_worker):
                # Two shared orders (same chains: real contention), the rest spread out.
                order_id = {0: 1, 1: 2}.get(n % 3)
                audit_record(action="test.concurrent", actor=actor, order_id=order_id)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert AuditEvent.objects.count() == workers * per_worker
    assert list(audit_chain_problems()) == []
    for head in AuditChainHead.objects.all():
        chain = AuditEvent.objects.filter(chain=head.chain).order_by("seq")
        seqs = list(chain.values_list("seq", flat=True))
        assert seqs == list(range(1, head.seq + 1))
