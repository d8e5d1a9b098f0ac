"""check_audit_chain catches an insider with database powers: a wipe, a rewrite with the
chain recomputed, a rollback to an older copy; the checkpoints outside the database see
what a self-consistent database cannot show."""

from __future__ import annotations

import importlib
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from orders.models import AuditChainHead, AuditEvent
from orders.services.actors import Actor
from orders.services.audit import GENESIS, audit_chain_problems, audit_record
from tests.helpers.audit import sealed

# Every test commits (checkpoints are written after commit) and, on PostgreSQL,
# tampers through a separate owner/superuser connection, which sees committed rows only.
pytestmark = pytest.mark.django_db(transaction=True)

legacy_digest = importlib.import_module("orders.migrations.0005_audit_keyed_chain").legacy_digest


def as_insider(request: pytest.FixtureRequest, *statements: tuple[str, list[Any]]) -> None:
    """Run SQL as a database superuser with the audit triggers bypassed (SQLite: none)."""
    if connection.vendor == "postgresql":
        owner = request.getfixturevalue("owner_db")
        with owner.transaction():
            # Ordinary triggers, TRUNCATE's included, do not fire for a replica session.
            owner.execute("SET LOCAL session_replication_role = replica")
            for sql, params in statements:
                owner.execute(sql, params)
    else:
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)


def check() -> str:
    out = StringIO()
    call_command("check_audit_chain", stdout=out)
    return out.getvalue()


def check_fails() -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="audit chain broken"):
        call_command("check_audit_chain", stdout=out)
    return out.getvalue()


def record_on_one_chain(count: int, *, order_id: int = 42) -> list[AuditEvent]:
    """`count` events of one order, sealed (in one batch: one checkpoint line)."""
    actor = Actor.system("support:alice")
    return sealed(
        *[
            audit_record(
                action="voucher.reveal", actor=actor, order_id=order_id, reason=f"ticket {n}"
            )
            for n in range(count)
        ]
    )


def test_a_healthy_trail_and_its_checkpoints_pass():
    record_on_one_chain(3)
    record_on_one_chain(2, order_id=43)

    out = check()

    assert "audit chain OK: 5 events in 2 chains" in out
    assert "checkpoints OK: 2 chains match the newest checkpoints" in out


def test_a_wiped_trail_with_its_heads_reset_fails(request):
    events = record_on_one_chain(4)
    chain = events[-1].chain
    wipe = "TRUNCATE orders_auditevent" if connection.vendor == "postgresql" else None
    as_insider(
        request,
        (wipe or "DELETE FROM orders_auditevent", []),
        ("UPDATE orders_auditchainhead SET seq = 0, last_hash = %s", [GENESIS]),
    )
    assert list(audit_chain_problems()) == []  # the database alone looks consistent

    out = check_fails()

    assert f"PROBLEM chain {chain} seq 4 (no event): checkpointed event" in out
    assert "trail wiped or rolled back" in out
    assert "audit chain OK" not in out


def test_zero_events_while_checkpoints_exist_is_not_ok(request):
    record_on_one_chain(2)
    as_insider(
        request,
        ("DELETE FROM orders_auditchainhead", []),
        (
            "TRUNCATE orders_auditevent"
            if connection.vendor == "postgresql"
            else "DELETE FROM orders_auditevent",
            [],
        ),
    )
    assert AuditEvent.objects.count() == 0

    out = check_fails()

    assert "OK: 0 events" not in out
    assert "is missing" in out


def test_an_event_rewritten_with_the_unkeyed_chain_recomputed_fails(request):
    events = record_on_one_chain(4)
    target = AuditEvent.objects.get(pk=events[1].pk)
    # The insider's edit: another actor and reason, then every later hash and the
    # head recomputed with the project's former (unkeyed SHA-256) digest.
    target.actor_label, target.reason = "system:cron", "routine check"
    statements: list[tuple[str, list[Any]]] = []
    prev_hash = target.prev_hash
    for event in AuditEvent.objects.filter(chain=target.chain, seq__gte=2).order_by("seq"):
        if event.pk == target.pk:
            event = target
        event.prev_hash = prev_hash
        event.hash = prev_hash = legacy_digest(event)
        statements.append(
            (
                "UPDATE orders_auditevent SET actor_label = %s, reason = %s, prev_hash = %s,"
                " hash = %s WHERE id = %s",
                [event.actor_label, event.reason, event.prev_hash, event.hash, event.pk],
            )
        )
    statements.append(
        (
            "UPDATE orders_auditchainhead SET last_hash = %s WHERE chain = %s",
            [prev_hash, target.chain],
        )
    )
    as_insider(request, *statements)

    out = check_fails()

    assert (
        f"PROBLEM chain {target.chain} seq 2 (event {target.pk}): content changed after it "
        "was written" in out
    )
    assert (
        f"PROBLEM chain {target.chain} seq 4 (event {events[3].pk}): differs from its "
        "checkpoint: event rewritten" in out
    )


def test_a_rollback_to_an_older_copy_fails(request):
    events = record_on_one_chain(6)
    kept = events[3]
    # An older copy: the newest two events gone and the head where it was then. Every
    # remaining HMAC and link is genuine, so only the checkpoints can tell.
    as_insider(
        request,
        ("DELETE FROM orders_auditevent WHERE chain = %s AND seq > 4", [kept.chain]),
        (
            "UPDATE orders_auditchainhead SET seq = 4, last_hash = %s WHERE chain = %s",
            [kept.hash, kept.chain],
        ),
    )
    assert list(audit_chain_problems()) == []
    assert AuditChainHead.objects.get(chain=kept.chain).seq == 4

    out = check_fails()

    assert f"PROBLEM chain {kept.chain} seq 6 (no event): checkpointed event" in out
    assert "chain head at seq 4 is behind the checkpoint" in out


def test_the_checkpoints_of_another_database_are_ignored(_audit_checkpoints):
    record_on_one_chain(1)
    line = _audit_checkpoints.read_text()
    other = '{"db":"postgresql://elsewhere:5432/other","chain":0,"seq":99,"hash":"x","at":"t"}'
    torn = line[: len(line) // 2]  # a line cut short by a crash mid-write
    _audit_checkpoints.write_text(f"{other}\n{line}{torn}\n")

    out = check()

    assert "checkpoints OK: 1 chains" in out
    assert "1 unreadable line(s)" in out
