"""Readiness: whether this web host can serve, and how far behind the workers are.

`readiness()` answers `/readyz`. The database, the cache and the task engine
are what a request needs: if one is unreachable the host is not ready (the
load balancer should stop sending it requests). The workers' heartbeat, the
oldest task and order waiting, and the audit seal lag say how the background
work is doing: past their limits they are reported as warnings for
monitoring, and the host stays ready — a stopped worker must not take every
web host out of the load balancer (docs/decisions/0008).

Every check is one cheap statement or cache round trip (the waiting work is
read on partial or leading-column indexes); a failure names the exception's
class only, never its message (it could carry a host name or a DSN).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from orders import task_engines
from orders.db_router import replica_alias
from orders.enums import OrderStatus
from orders.models import Order, WorkerHeartbeat
from orders.selectors.audit import audit_seal_lag

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return FAIL if any(c["status"] == FAIL for c in self.checks.values()) else OK

    @property
    def warnings(self) -> list[str]:
        return [name for name, c in self.checks.items() if c["status"] == WARN]

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "warnings": self.warnings, "checks": self.checks}


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else round(max(0.0, (now - at).total_seconds()), 1)


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a check that cannot run: its dependency is down
        result = {"status": FAIL, "error": f"unreachable ({type(exc).__name__})"}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"status": OK, "vendor": connection.vendor}


def _cache() -> dict[str, Any]:
    key, value = f"readyz:{uuid.uuid4().hex}", "1"
    cache.set(key, value, timeout=5)
    if cache.get(key) != value:
        return {"status": FAIL, "error": "a value set could not be read back"}
    cache.delete(key)
    return {"status": OK}


def _tasks(now: datetime) -> dict[str, Any]:
    """The task engine: reachable, how many tasks are ready and since when."""
    engine = task_engines.current()
    backlog = engine.backlog()
    age = _age(backlog.oldest_ready_at, now)
    limit = settings.READYZ_TASK_MAX_AGE_SECONDS
    return {
        "status": WARN if age is not None and age > limit else OK,
        "engine": engine.name,
        "ready": backlog.ready,
        "oldest_ready_age_s": age,
        "limit_s": limit,
    }


def _orders_waiting(now: datetime) -> dict[str, Any]:
    """Orders placed and not yet taken up (the stock batcher's queue, and any order
    whose task has not started): how many and since when."""
    row = Order.objects.filter(status=OrderStatus.PLACED).aggregate(
        placed=Count("id"), oldest=Min("placed_at")
    )
    age = _age(row["oldest"], now)
    limit = settings.READYZ_TASK_MAX_AGE_SECONDS
    return {
        "status": WARN if age is not None and age > limit else OK,
        "placed": row["placed"],
        "oldest_placed_age_s": age,
        "limit_s": limit,
    }


def _workers(now: datetime) -> dict[str, Any]:
    limit = settings.READYZ_WORKER_MAX_AGE_SECONDS
    row = WorkerHeartbeat.objects.aggregate(
        newest=Max("seen_at"),
        alive=Count("id", filter=Q(seen_at__gte=now - timedelta(seconds=limit))),
    )
    age = _age(row["newest"], now)
    return {
        "status": WARN if age is None or age > limit else OK,
        "alive": row["alive"],
        "newest_heartbeat_age_s": age,
        "limit_s": limit,
    }


def _seal_lag(now: datetime) -> dict[str, Any]:
    lag = audit_seal_lag()
    age = round(lag.age_seconds(now=now), 1)
    limit = settings.AUDIT_SEAL_MAX_LAG_SECONDS
    return {
        "status": WARN if lag.unsealed and age > limit else OK,
        "unsealed": lag.unsealed,
        "oldest_unsealed_age_s": age if lag.unsealed else None,
        "limit_s": limit,
    }


def _replica() -> dict[str, Any]:
    """The read replica: reachable, and how far its replay is behind the WAL it
    has received (0 when caught up; an idle primary does not make it look late)."""
    replica = connections[replica_alias()]
    with replica.cursor() as cursor:
        if replica.vendor != "postgresql":
            cursor.execute("SELECT 1")
            return {"status": OK, "standby": None, "lag_s": None}
        cursor.execute(
            "SELECT pg_is_in_recovery(), CASE"
            " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
            " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        standby, lag = cursor.fetchone()
    lag_s = None if lag is None else round(float(lag), 1)
    limit = settings.READYZ_REPLICA_MAX_LAG_SECONDS
    late = lag_s is not None and lag_s > limit
    return {"status": WARN if late else OK, "standby": standby, "lag_s": lag_s, "limit_s": limit}


def readiness() -> Readiness:
    """Every check, each timed; a check whose dependency is down fails alone."""
    now = timezone.now()
    ready = Readiness()
    ready.checks["database"] = _timed(_database)
    ready.checks["cache"] = _timed(_cache)
    if ready.checks["database"]["status"] == FAIL:
        skipped = {"status": FAIL, "error": "the database is unreachable"}
        for name in ("tasks", "orders_waiting", "workers", "audit_seal"):
            ready.checks[name] = dict(skipped)
        return ready
    ready.checks["tasks"] = _timed(lambda: _tasks(now))
    ready.checks["orders_waiting"] = _timed(lambda: _orders_waiting(now))
    ready.checks["workers"] = _timed(lambda: _workers(now))
    ready.checks["audit_seal"] = _timed(lambda: _seal_lag(now))
    if replica_alias():
        # A replica out of reach fails the dashboard's lists, not the orders:
        # a warning, never a reason to take the host out of rotation.
        replica = _timed(_replica)
        if replica["status"] == FAIL:
            replica["status"] = WARN
        ready.checks["replica"] = replica
    return ready
