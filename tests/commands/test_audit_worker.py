"""The worker seals the audit trail: `run_worker --batch` once, a running worker about
every AUDIT_SEAL_SECONDS, two workers at once without sealing an event twice."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from orders.models import AuditEvent
from orders.selectors.audit import audit_seal_lag
from orders.services.actors import Actor
from orders.services.audit import audit_chain_problems, audit_record
from tests.helpers.tasks import WorkerPool, wait_until

pytestmark = pytest.mark.django_db


def _record(count: int) -> None:
    actor = Actor.system("test")
    for n in range(count):
        audit_record(action="voucher.reveal", actor=actor, order_id=200 + n % 7, data={"n": n})


@pytest.mark.django_db(transaction=True)  # db_worker closes its connection when done
def test_run_worker_batch_seals_the_backlog():
    _record(12)

    call_command("run_worker", "--batch", verbosity=0)

    assert audit_seal_lag().unsealed == 0
    assert list(audit_chain_problems()) == []


def test_seal_audit_once_seals_the_backlog():
    _record(5)
    out = StringIO()

    call_command("seal_audit", "--once", stdout=out)

    assert "sealed 5 audit event(s)" in out.getvalue()
    assert audit_seal_lag().unsealed == 0


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[WorkerPool]:
    workers = WorkerPool(tmp_path)
    try:
        yield workers
    finally:
        workers.stop_all()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_running_workers_seal_every_event_once_as_it_comes(pool):
    for _ in range(2):
        pool.start(AUDIT_SEAL_SECONDS="0.2")
    _record(60)

    wait_until(
        lambda: audit_seal_lag().unsealed == 0, timeout=60, what="the workers to seal everything"
    )
    _record(20)  # and again, while they keep running
    wait_until(lambda: audit_seal_lag().unsealed == 0, timeout=60, what="the second backlog")

    assert AuditEvent.objects.filter(sealed_at__isnull=False).count() == 80
    assert list(audit_chain_problems()) == []
    assert "audit seal failed" not in pool.logs()
    out = StringIO()
    call_command("check_audit_chain", stdout=out)
    assert "audit chain OK: 80 events" in out.getvalue()
    assert "checkpoints OK" in out.getvalue()  # the workers checkpointed their batches
