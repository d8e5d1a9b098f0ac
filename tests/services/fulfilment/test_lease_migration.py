"""Migration 0009 gives the lease its own column: an attempt in flight keeps its
lease (it moves from next_attempt_at to leased_until), a scheduled retry keeps
its due time, and going back restores the old reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orders", "0008_delivery_emails")]
LEASED = [("orders", "0009_order_lease")]


@pytest.fixture
def migrations(django_as_owner: None) -> Iterator[None]:
    """A test that migrates back and forth; the latest schema again afterwards."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        yield
    finally:
        MigrationExecutor(connection).migrate(latest)


def _migrate(target: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return MigrationExecutor(connection)


def test_an_attempt_in_flight_keeps_its_lease_and_a_retry_its_due_time(buyer, product, migrations):
    in_flight, waiting = (buyer.place(product, ref).pk for ref in ("MIG-FLIGHT", "MIG-RETRY"))
    lease_end = timezone.now() + timedelta(minutes=4)
    retry_due = timezone.now() + timedelta(minutes=9)
    old = _migrate(BEFORE).loader.project_state(BEFORE).apps.get_model("orders", "Order")
    old.objects.filter(pk=in_flight).update(
        status="PENDING", sub_status="VENDOR_ORDER_CREATED", next_attempt_at=lease_end
    )
    old.objects.filter(pk=waiting).update(
        status="PENDING", sub_status="PENDING_REPROCESS", next_attempt_at=retry_due
    )

    leased = _migrate(LEASED).loader.project_state(LEASED).apps.get_model("orders", "Order")

    # The model as of 0009: today's has columns added since (delivery_method, …).
    rows = leased.objects.in_bulk([in_flight, waiting])
    assert (rows[in_flight].leased_until, rows[in_flight].next_attempt_at) == (lease_end, None)
    assert (rows[waiting].leased_until, rows[waiting].next_attempt_at) == (None, retry_due)

    back = _migrate(BEFORE).loader.project_state(BEFORE).apps
    reverted = back.get_model("orders", "Order").objects.in_bulk([in_flight, waiting])
    assert reverted[in_flight].next_attempt_at == lease_end
    assert reverted[waiting].next_attempt_at == retry_due
