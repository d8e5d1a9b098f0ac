"""/readyz with a read replica configured: it reports the replica and its replay
lag, and a replica out of reach is a warning (the dashboard's lists fail, the
orders do not), never a reason to take the host out of the load balancer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client as HttpClient

from orders.services.heartbeats import Heart
from tests.helpers.net import free_port

REPLICA = "replica"

pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])


@pytest.fixture(autouse=True)
def replica_on(settings):
    settings.DATABASE_REPLICA_ALIAS = REPLICA
    Heart.for_process("test-worker").beat(every=0)


@pytest.fixture
def replica_down() -> Iterator[None]:
    """The replica's connection points at a port nothing listens on."""
    replica = connections[REPLICA]
    replica.close()
    port = replica.settings_dict["PORT"]
    replica.settings_dict["PORT"] = free_port()
    yield
    replica.close()
    replica.settings_dict["PORT"] = port


def test_readyz_reports_the_replica_and_its_lag():
    response = HttpClient().get("/readyz")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    replica = body["checks"]["replica"]
    assert replica["status"] == "ok"
    assert "replica" not in body["warnings"]
    if connections[REPLICA].vendor == "postgresql":
        # The test mirror is the primary itself: not a standby, nothing to replay.
        assert (replica["standby"], replica["lag_s"]) == (False, None)


@pytest.mark.postgres
def test_a_replica_out_of_reach_is_a_warning_and_the_host_stays_ready(replica_down):
    response = HttpClient().get("/readyz")

    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["warnings"] == ["replica"]
    assert body["checks"]["replica"]["error"] == "unreachable (OperationalError)"
    assert "127.0.0.1" not in response.content.decode()  # never an address or a DSN


def test_without_a_replica_readyz_has_no_replica_check(settings):
    settings.DATABASE_REPLICA_ALIAS = ""

    body = HttpClient().get("/readyz").json()

    assert "replica" not in body["checks"]
