"""Shared fixtures. Tests run on PostgreSQL when DATABASE_URL is set, else SQLite."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.cache import cache
from django.db import connection

from orders.crypto import reset_keyring
from orders.services.actors import Actor

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

TEST_KEY_1 = base64.urlsafe_b64encode(b"1" * 32).decode()
TEST_KEY_2 = base64.urlsafe_b64encode(b"2" * 32).decode()
TEST_FINGERPRINT_KEY = base64.urlsafe_b64encode(b"f" * 32).decode()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip PostgreSQL-only tests on SQLite, visibly (-ra prints the reason)."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")):
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
    reset_keyring()
    yield
    reset_keyring()


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def system_actor() -> Actor:
    return Actor.system("test")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
