"""/healthz and /readyz as a load balancer and an operator on call see them."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from orders.models import Order, WorkerHeartbeat
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.heartbeats import Heart
from orders.services.webhooks import webhook_deliver_task
from orders.tasks import enqueue
from tests.factories import OrderFactory
from tests.helpers.net import free_port
from tests.helpers.tasks import wait_until

pytestmark = pytest.mark.django_db


def _unreachable_cache():
    """The cache on a Redis port nothing listens on: a real connection refused.
    A context manager, so the cache is back before the test's own teardown."""
    location = f"redis://127.0.0.1:{free_port()}/0"
    return override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
            }
        }
    )


def _ready(client: HttpClient | None = None):
    response = (client or HttpClient()).get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response, response.json()


def test_healthz_answers_without_touching_the_database_or_the_cache(django_assert_num_queries):
    with _unreachable_cache(), django_assert_num_queries(0):
        response = HttpClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert HttpClient().post("/healthz").status_code == 405


def test_readyz_is_ok_with_a_worker_beating():
    Heart.for_process("test-worker").beat(every=0)
    response, body = _ready()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["warnings"] == []
    assert set(body["checks"]) == {
        "database",
        "cache",
        "tasks",
        "orders_waiting",
        "workers",
        "audit_seal",
    }
    assert body["checks"]["workers"]["alive"] == 1
    assert body["checks"]["workers"]["newest_heartbeat_age_s"] < 5
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_a_heartbeat_is_written_once_per_interval_and_says_who():
    heart = Heart.for_process("worker-a")
    assert heart.beat(every=60) is True
    assert heart.beat(every=60) is False  # within the interval: no write
    row = WorkerHeartbeat.objects.get(worker_id="worker-a")
    assert (row.hostname, row.pid) == (socket.gethostname(), heart.pid)
    WorkerHeartbeat.objects.create(
        worker_id="long-gone",
        hostname="old",
        pid=1,
        started_at=timezone.now() - timedelta(days=30),
        seen_at=timezone.now() - timedelta(days=30),
    )
    Heart.for_process("worker-b").beat(every=60)  # a new worker's first beat prunes it
    assert set(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == {
        "worker-a",
        "worker-b",
    }


def test_readyz_warns_but_stays_ready_when_the_background_work_falls_behind(settings):
    settings.READYZ_TASK_MAX_AGE_SECONDS = 60
    settings.AUDIT_SEAL_MAX_LAG_SECONDS = 0.1  # the trail is append-only: no event made old
    long_ago = timezone.now() - timedelta(minutes=10)
    WorkerHeartbeat.objects.create(
        worker_id="stopped", hostname="h", pid=1, started_at=long_ago, seen_at=long_ago
    )
    enqueue(webhook_deliver_task, 1)
    DBTaskResult.objects.update(enqueued_at=long_ago)
    order = OrderFactory()
    Order.objects.filter(pk=order.pk).update(placed_at=long_ago)
    audit_record(action="test.lag", actor=Actor.system("test"))
    wait_until(
        lambda: _ready()[1]["checks"]["audit_seal"]["status"] == "warn",
        timeout=10,
        what="the unsealed event to pass the seal lag allowed",
    )

    response, body = _ready()
    assert response.status_code == 200  # a stopped worker does not drain the web hosts
    assert body["status"] == "ok"
    assert sorted(body["warnings"]) == ["audit_seal", "orders_waiting", "tasks", "workers"]
    checks = body["checks"]
    assert checks["workers"]["alive"] == 0
    assert checks["workers"]["newest_heartbeat_age_s"] >= 600
    assert checks["tasks"]["ready"] == 1
    assert checks["tasks"]["oldest_ready_age_s"] >= 600
    assert checks["orders_waiting"]["placed"] == 1
    assert checks["audit_seal"]["unsealed"] >= 1
    assert checks["audit_seal"]["oldest_unsealed_age_s"] > 0.1


def test_readyz_warns_when_no_worker_has_ever_run():
    response, body = _ready()
    assert response.status_code == 200
    assert body["warnings"] == ["workers"]
    assert body["checks"]["workers"]["newest_heartbeat_age_s"] is None


def test_readyz_answers_503_in_json_when_the_cache_is_unreachable():
    Heart.for_process("test-worker").beat(every=0)
    with _unreachable_cache():
        response, body = _ready()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["cache"]["status"] == "fail"
    assert body["checks"]["cache"]["error"] == "unreachable (ConnectionError)"
    assert "127.0.0.1" not in response.content.decode()  # no address, no DSN
    assert body["checks"]["database"]["status"] == "ok"


def test_the_probes_are_not_redirected_to_https(settings):
    settings.SECURE_SSL_REDIRECT = True
    assert HttpClient().get("/healthz").status_code == 200
    assert HttpClient().get("/readyz").status_code == 200
    assert HttpClient().get("/dashboard/").status_code == 301
