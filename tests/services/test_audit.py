"""The audit trail: append-only in PostgreSQL, and tamper-evident everywhere once sealed."""

from __future__ import annotations

import base64
import json
import logging
import threading
from io import StringIO

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from orders.crypto import reset_keyring
from orders.models import AuditChainHead, AuditEvent
from orders.services.actors import Actor
from orders.services.audit import audit_chain_problems, audit_record, database_identity
from tests.helpers.audit import seal_all, sealed
from tests.helpers.keys import TEST_AUDIT_KEY

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
    assert (first.seq, first.hash, first.sealed_at) == (None, "", None)  # not sealed yet

    first, second = sealed(first, second)

    assert first.chain == second.chain
    assert first.sealed_at is not None
    assert (first.seq + 1, first.hash) == (second.seq, second.prev_hash)
    head = AuditChainHead.objects.get(chain=first.chain)
    assert (head.seq, head.last_hash) == (second.seq, second.hash)
    assert list(audit_chain_problems()) == []


def test_check_audit_chain_passes_on_an_intact_trail(system_actor):
    _record_some(system_actor)
    seal_all()
    out = StringIO()

    call_command("check_audit_chain", stdout=out)

    chains = AuditEvent.objects.order_by().values("chain").distinct().count()
    assert f"audit chain OK: 5 events in {chains} chains" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_check_audit_chain_catches_a_removed_event_on_any_database(system_actor, request):
    events = _record_some(system_actor)
    seal_all()
    # SQLite has no trigger; on PostgreSQL only the owner can disable it to delete.
    if connection.vendor == "postgresql":
        owner = request.getfixturevalue("owner_db")
        with owner.transaction():
            owner.execute(f"ALTER TABLE orders_auditevent DISABLE TRIGGER {TRIGGER}")
            owner.execute("DELETE FROM orders_auditevent WHERE id = %s", [events[2].pk])
            owner.execute(f"ALTER TABLE orders_auditevent ENABLE TRIGGER {TRIGGER}")
    else:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM orders_auditevent WHERE id = %s", [events[2].pk])

    out = StringIO()
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("check_audit_chain", stdout=out)
    assert "chain head does not match the last event" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_update_of_an_audit_event_is_refused_by_postgresql_even_to_the_owner(
    system_actor, owner_db
):
    (event, *_) = _record_some(system_actor, count=1)
    seal_all()

    with pytest.raises(psycopg.Error, match="append-only"):
        owner_db.execute(
            "UPDATE orders_auditevent SET reason = %s WHERE id = %s", ["edited", event.pk]
        )

    event.refresh_from_db()
    assert event.reason == "Customer ticket #0"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_delete_of_an_audit_event_is_refused_by_postgresql_even_to_the_owner(
    system_actor, owner_db
):
    (event, *_) = _record_some(system_actor, count=1)

    with pytest.raises(psycopg.Error, match="append-only"):
        owner_db.execute("DELETE FROM orders_auditevent WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_truncate_of_the_audit_trail_is_refused_by_postgresql_even_to_the_owner(
    system_actor, owner_db
):
    _record_some(system_actor, count=2)

    with pytest.raises(psycopg.Error, match="append-only: TRUNCATE is not allowed"):
        owner_db.execute("TRUNCATE orders_auditevent")

    assert AuditEvent.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_check_audit_chain_catches_an_event_changed_behind_the_trigger(system_actor, owner_db):
    events = _record_some(system_actor)
    seal_all()
    target = events[3]
    with owner_db.transaction():
        owner_db.execute(f"ALTER TABLE orders_auditevent DISABLE TRIGGER {TRIGGER}")
        owner_db.execute(
            "UPDATE orders_auditevent SET reason = %s WHERE id = %s",
            ["nothing to see here", target.pk],
        )
        owner_db.execute(f"ALTER TABLE orders_auditevent ENABLE TRIGGER {TRIGGER}")

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
    assert seal_all() == workers * per_worker
    assert list(audit_chain_problems()) == []
    for head in AuditChainHead.objects.all():
        chain = AuditEvent.objects.filter(chain=head.chain).order_by("seq")
        seqs = list(chain.values_list("seq", flat=True))
        assert seqs == list(range(1, head.seq + 1))


# --- The key: HMAC under AUDIT_KEY, with rotation ---------------------------------


def test_each_event_is_sealed_with_an_hmac_under_the_active_audit_key(system_actor, settings):
    event = audit_record(action="order.create", actor=system_actor, order_id=9, reason="r")
    seal_all()

    assert event.key_id == "t1"
    settings.AUDIT_KEY = f"t1:{base64.urlsafe_b64encode(b'x' * 32).decode()}"  # same id, other key
    reset_keyring()
    assert [(p.event_id, p.problem) for p in audit_chain_problems()] == [
        (event.pk, "content changed after it was written")
    ]


def test_after_a_rotation_new_events_use_the_new_key_and_old_ones_still_verify(
    system_actor, settings
):
    old = audit_record(action="order.create", actor=system_actor, order_id=11)
    settings.AUDIT_KEY = f"t2:{base64.urlsafe_b64encode(b'b' * 32).decode()},{TEST_AUDIT_KEY}"
    reset_keyring()

    new = audit_record(action="order.cancel", actor=system_actor, order_id=11)
    old, new = sealed(old, new)

    assert (old.key_id, new.key_id) == ("t1", "t2")
    assert new.prev_hash == old.hash
    assert list(audit_chain_problems()) == []
    settings.AUDIT_KEY = f"t2:{base64.urlsafe_b64encode(b'b' * 32).decode()}"  # t1 dropped
    reset_keyring()
    assert [p.problem for p in audit_chain_problems()] == [
        "sealed with key 't1', which is not in AUDIT_KEY"
    ]


def test_without_audit_key_a_development_key_is_generated_once_outside_git(
    system_actor, settings, tmp_path
):
    settings.AUDIT_KEY = ""
    settings.AUDIT_DEV_KEY_FILE = str(tmp_path / "audit_key")
    reset_keyring()

    event = audit_record(action="order.create", actor=system_actor, order_id=1)
    reset_keyring()
    seal_all()

    key_file = tmp_path / "audit_key"
    assert event.key_id == "dev1"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().startswith("dev1:")
    assert list(audit_chain_problems()) == []  # the same file, read again


@pytest.mark.parametrize(
    ("spec", "message"),
    [("t1:c2hvcnQ=", "shorter than 32 bytes"), ("nokey", "kid:base64key")],
)
def test_a_bad_audit_key_is_refused_clearly(settings, system_actor, spec, message):
    settings.AUDIT_KEY = spec
    reset_keyring()

    with pytest.raises(ImproperlyConfigured, match=message):
        audit_record(action="order.create", actor=system_actor)


# --- Checkpoints outside the database ------------------------------------------------


def test_a_sealed_batch_is_checkpointed_to_the_file_and_the_log(
    system_actor, _audit_checkpoints, caplog, django_capture_on_commit_callbacks
):
    audit_record(action="order.create", actor=system_actor, order_id=5)
    with (
        caplog.at_level(logging.INFO, logger="orders.audit.checkpoint"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event = audit_record(action="order.cancel", actor=system_actor, order_id=5)
        (event,) = sealed(event)

    # One line per chain per batch: the newest seq and hash of the chain.
    (line,) = _audit_checkpoints.read_text().splitlines()
    checkpoint = json.loads(line)
    assert checkpoint == {
        "db": database_identity(),
        "chain": event.chain,
        "seq": event.seq,
        "hash": event.hash,
        "at": event.sealed_at.isoformat(),
    }
    assert event.seq == 2
    assert [r.getMessage() for r in caplog.records if r.name == "orders.audit.checkpoint"] == [line]


def test_an_event_rolled_back_with_its_transaction_is_never_sealed_nor_checkpointed(
    system_actor, _audit_checkpoints, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        audit_record(action="order.create", actor=system_actor, order_id=5)
        seal_all()
        raise RuntimeError("the request failed")

    assert callbacks == []
    assert not _audit_checkpoints.exists()
    assert not AuditEvent.objects.exists()
    assert seal_all() == 0


def test_two_databases_on_one_host_never_share_checkpoints():
    db = connection.settings_dict
    name = db["NAME"]
    try:
        db["NAME"] = "another"
        other = database_identity()
    finally:
        db["NAME"] = name
    assert other != database_identity()
    assert database_identity().startswith(connection.vendor)
