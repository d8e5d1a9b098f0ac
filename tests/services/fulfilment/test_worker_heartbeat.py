"""A real `run_worker` process records its heartbeat, and /readyz shows it."""

from __future__ import annotations

import pytest
from django.test import Client as HttpClient

from orders.models import WorkerHeartbeat
from tests.helpers.tasks import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _workers_check() -> dict:
    return HttpClient().get("/readyz").json()["checks"]["workers"]


def test_a_running_worker_shows_in_readyz(workers):
    assert _workers_check()["alive"] == 0
    workers.start()
    wait_until(lambda: _workers_check()["alive"] == 1, timeout=60, what="the first heartbeat")
    (beat,) = WorkerHeartbeat.objects.all()
    assert beat.worker_id == "test-worker-1"
    assert _workers_check()["newest_heartbeat_age_s"] < 60
