"""Migration 0005 keys an existing trail: the unkeyed SHA-256 chains are verified, then
re-sealed with HMAC under the active AUDIT_KEY, so the trail stays verifiable."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from orders.models import AuditEvent
from orders.services.audit import GENESIS, audit_chain_problems

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orders", "0004_refund_review")]
KEYED = [("orders", "0005_audit_keyed_chain")]
legacy_digest = importlib.import_module("orders.migrations.0005_audit_keyed_chain").legacy_digest


@pytest.fixture
def legacy_trail(django_as_owner: None) -> Iterator[MigrationExecutor]:
    """The database before 0005, with a trail of 3 events sealed the old way."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Event, Head = old.get_model("orders", "AuditEvent"), old.get_model("orders", "AuditChainHead")
    prev_hash = GENESIS
    for seq in (1, 2, 3):
        event = Event(
            chain=0,
            seq=seq,
            prev_hash=prev_hash,
            action="voucher.reveal",
            actor_label="support:alice",
            order_id=16,
            reason=f"ticket {seq}",
            user_agent="",
            data={"n": seq},
            created_at=timezone.now(),
        )
        event.hash = prev_hash = legacy_digest(event)
        event.save()
    Head.objects.create(chain=0, seq=3, last_hash=prev_hash)
    try:
        yield MigrationExecutor(connection)
    finally:
        MigrationExecutor(connection).migrate(latest)


def _to_latest() -> None:
    # The verifier reads today's columns (sealed_at since 0010): check at the latest state.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_an_unkeyed_trail_is_resealed_under_the_audit_key_and_verifies(legacy_trail):
    legacy_trail.migrate(KEYED)
    _to_latest()

    events = list(AuditEvent.objects.order_by("seq"))
    assert [(e.seq, e.reason, e.key_id) for e in events] == [
        (1, "ticket 1", "t1"),
        (2, "ticket 2", "t1"),
        (3, "ticket 3", "t1"),
    ]
    assert list(audit_chain_problems()) == []
    assert events[2].hash != legacy_digest(events[2])


def test_a_broken_unkeyed_trail_stops_the_migration_instead_of_being_laundered(
    legacy_trail, monkeypatch
):
    with connection.cursor() as cursor:  # tampered before the upgrade (no trigger on SQLite)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE orders_auditevent DISABLE TRIGGER ALL")
        cursor.execute("UPDATE orders_auditevent SET reason = 'edited' WHERE seq = 2")
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE orders_auditevent ENABLE TRIGGER ALL")

    with pytest.raises(RuntimeError, match="chain 0 seq 2: content changed"):
        legacy_trail.migrate(KEYED)

    monkeypatch.setenv("AUDIT_RESEAL_BROKEN", "1")  # the operator's explicit choice
    MigrationExecutor(connection).migrate(KEYED)
    _to_latest()
    assert list(audit_chain_problems()) == []
