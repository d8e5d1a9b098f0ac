"""Migration 0010 makes audit events sealable later: the events already in the trail
count as sealed (when they were written) and still verify; going back seals the
backlog first."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders.crypto import reset_keyring
from orders.models import AuditEvent
from orders.services.actors import Actor
from orders.services.audit import audit_chain_problems, audit_record
from tests.helpers.audit import seal_all

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orders", "0009_order_lease")]


def _migrate(targets: list[tuple[str, str]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.fixture(autouse=True)
def _latest_schema_afterwards(django_as_owner: None) -> Iterator[None]:
    """The latest schema again after each test, also after one whose way back
    stopped half-way: the next test on this worker needs every table."""
    try:
        yield
    finally:
        _migrate()


def test_a_sealed_trail_goes_back_and_forth_and_its_events_count_as_sealed(django_as_owner):
    actor = Actor.system("support:alice")
    for n in range(3):
        audit_record(action="voucher.reveal", actor=actor, order_id=16, reason=f"ticket {n}")
    seal_all()
    before = dict(AuditEvent.objects.values_list("pk", "hash"))

    _migrate(BEFORE)
    _migrate()

    events = list(AuditEvent.objects.order_by("seq"))
    assert {e.pk: e.hash for e in events} == before
    assert all(e.sealed_at == e.created_at for e in events)
    assert list(audit_chain_problems()) == []


def test_going_back_seals_the_backlog_first(django_as_owner):
    audit_record(action="voucher.reveal", actor=Actor.system("support:alice"), order_id=16)

    _migrate(BEFORE)
    _migrate()

    assert AuditEvent.objects.filter(sealed_at__isnull=True).count() == 0
    assert list(audit_chain_problems()) == []


def test_going_back_with_an_event_it_cannot_seal_stops_with_a_clear_message(
    django_as_owner, settings
):
    audit_record(action="voucher.reveal", actor=Actor.system("support:alice"), order_id=16)
    settings.AUDIT_KEY = f"t9:{base64.urlsafe_b64encode(b'z' * 32).decode()}"  # t1 gone
    reset_keyring()

    with pytest.raises(RuntimeError, match=r"1 audit event.* could not be sealed"):
        _migrate(BEFORE)

    assert AuditEvent.objects.filter(sealed_at__isnull=True).count() == 1
