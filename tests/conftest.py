"""Shared fixtures. Tests run on PostgreSQL when DATABASE_URL is set, else SQLite.

With DATABASE_APP_ROLE also set (CI does), the test database is created and
migrated as DATABASE_URL's user (the owner; migrate grants the role its DML)
and every test then connects as that role, which owns no table: the suite
proves the application needs no owner power. Tests that simulate an insider
with owner or superuser powers ask for `owner_db`, a separate connection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.management.color import no_style
from django.core.management.sql import emit_post_migrate_signal, sql_flush
from django.db import connection, connections
from django.test import TransactionTestCase

from orders.crypto import reset_keyring
from orders.db_roles import app_role_grant
from orders.roles import ROLE_PERMISSIONS, role_permissions
from orders.services.actors import Actor
from tests.helpers.keys import TEST_AUDIT_KEY, TEST_FINGERPRINT_KEY, TEST_KEY_1
from tests.helpers.webhooks import Receiver

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql"))
APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "") if ON_POSTGRES else ""
_OWNER: dict[str, Any] = {}  # USER and PASSWORD of the owner while tests run as APP_ROLE


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Migrate as the owner (pytest-django's setup), then run the tests as APP_ROLE."""
    if not APP_ROLE:
        yield
        return
    # The default connection and its test mirrors (the read replica's alias).
    dbs = [
        connections[alias].settings_dict
        for alias in connections
        if alias == "default" or connections[alias].settings_dict["TEST"]["MIRROR"] == "default"
    ]
    with django_db_blocker.unblock():
        connections.close_all()
        _OWNER.update(USER=dbs[0]["USER"], PASSWORD=dbs[0]["PASSWORD"])
        for db in dbs:
            db.update(USER=APP_ROLE, PASSWORD="")  # trust auth or ~/.pgpass for the role
    yield
    with django_db_blocker.unblock():
        connections.close_all()
        for db in dbs:
            db.update(_OWNER)  # the owner drops the test database
        _OWNER.clear()


def owner_connect(alias: str = "default") -> psycopg.Connection[Any]:
    """A new connection to the test database as its owner (autocommit)."""
    db = connections[alias].settings_dict
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        dbname=db["NAME"],
        user=_OWNER.get("USER", db["USER"]),
        password=_OWNER.get("PASSWORD", db["PASSWORD"]) or None,
        autocommit=True,
    )


@pytest.fixture
def owner_db() -> Iterator[psycopg.Connection[Any]]:
    """The owner (a superuser in CI) of the test database: for insider simulations only.
    It sees committed rows only: tests using it are `transaction=True`."""
    with owner_connect() as conn:
        yield conn


@pytest.fixture
def django_as_owner(transactional_db: None) -> Iterator[None]:
    """Django's own connection as the owner, e.g. to run migrations in a test."""
    if not APP_ROLE:
        yield
        return
    db = connections["default"].settings_dict
    connections["default"].close()
    db.update(_OWNER)
    try:
        yield
    finally:
        # Tables a test's migrations dropped and made again have no grants yet
        # (only `migrate` grants, after it ran): grant as migrate would.
        app_role_grant(role=APP_ROLE)
        connections["default"].close()
        db.update(USER=APP_ROLE, PASSWORD="")


@pytest.fixture
def as_app_role(db: None) -> Iterator[str]:
    """Django's connection runs as the application's role, with migrate's grants."""
    if APP_ROLE:
        yield APP_ROLE  # already connected as the role (CI)
        return
    # A role of this test's transaction only: rolled back (with its grants) afterwards.
    role = f"starship_test_app_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
    app_role_grant(role=role)
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
    yield role
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


_django_fixture_teardown = TransactionTestCase._fixture_teardown


def _fixture_teardown(self: TransactionTestCase) -> None:
    """Empty the database after a transactional test, through the owner on PostgreSQL:
    the application role may not TRUNCATE the audit trail, and its trigger refuses
    TRUNCATE to everyone else, so the owner disables it inside the flush's transaction."""
    aliases = list(self._databases_names(include_mirrors=False))
    if not all(connections[alias].vendor == "postgresql" for alias in aliases):
        _django_fixture_teardown(self)
        return
    for alias in aliases:
        cascade = self.available_apps is not None
        statements = sql_flush(
            no_style(), connections[alias], reset_sequences=False, allow_cascade=cascade
        )
        with owner_connect(alias) as owner, owner.transaction():
            owner.execute(
                "ALTER TABLE orders_auditevent DISABLE TRIGGER orders_auditevent_no_truncate"
            )
            for statement in statements:
                owner.execute(statement)  # type: ignore[call-overload]
            owner.execute(
                "ALTER TABLE orders_auditevent ENABLE TRIGGER orders_auditevent_no_truncate"
            )
        if statements and self.available_apps is None and not self.serialized_rollback:
            emit_post_migrate_signal(0, False, alias)


TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip PostgreSQL-only tests on SQLite, visibly (-ra prints the reason)."""
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (row locks, SKIP LOCKED, triggers or concurrency): "
        "run with DATABASE_URL=postgres://…"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _test_keyring(settings):
    """A fixed keyring for tests; never the on-disk development keys."""
    settings.VOUCHER_KEYS = f"k1:{TEST_KEY_1}"
    settings.VOUCHER_FINGERPRINT_KEY = TEST_FINGERPRINT_KEY
    settings.AUDIT_KEY = TEST_AUDIT_KEY
    reset_keyring()
    yield
    reset_keyring()


@pytest.fixture(autouse=True)
def _audit_checkpoints(settings, tmp_path: Path) -> Path:
    """Each test checkpoints its audit events into its own file."""
    path = tmp_path / "audit-checkpoints.jsonl"
    settings.AUDIT_CHECKPOINT_PATH = str(path)
    return path


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _empty_rq_queues(settings):
    """On RQ each test starts with no job queued, scheduled, running or failed."""
    if settings.TASKS_BACKEND != settings.RQ_BACKEND:
        yield
        return
    import redis

    server = redis.Redis.from_url(settings.RQ_REDIS_URL)
    server.flushdb()
    yield
    server.flushdb()
    server.close()


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("test")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def roles(transactional_db: None) -> None:
    """Staff groups as migration 0003 makes them (a transactional test flushes them)."""
    for role in ROLE_PERMISSIONS:
        group, _ = Group.objects.get_or_create(name=role)
        for name in role_permissions(role):
            app_label, codename = name.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


@pytest.fixture
def receiver() -> Iterator[Any]:
    """Make webhook receivers on 127.0.0.1 (`receiver(failures=n)`); closed after the test."""
    made: list[Receiver] = []

    def make(failures: int = 0) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make
    for r in made:
        r.close()
