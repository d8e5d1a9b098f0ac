"""Migration 0017 gives scopes and allowlists to credentials: those issued before
it hold every scope afterwards, answer from any address, and keep working."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client as HttpClient

from orders.enums import ALL_API_SCOPES
from orders.models import ApiCredential

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("orders", "0016_import_uploads")]


def _migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.fixture(autouse=True)
def _latest_schema_afterwards(django_as_owner: None) -> Iterator[None]:
    try:
        yield
    finally:
        _migrate()


def test_a_credential_from_before_scopes_holds_them_all_and_keeps_working(django_as_owner):
    executor = _migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    client = old.get_model("orders", "Client").objects.create(name="Old Shop")
    old.get_model("orders", "ApiCredential").objects.create(
        client=client,
        public_key="sk_live_old0000000000000000",
        secret_hash=hashlib.sha256(b"old-secret").hexdigest(),
    )

    _migrate()

    credential = ApiCredential.objects.get(public_key="sk_live_old0000000000000000")
    assert credential.scopes == list(ALL_API_SCOPES)
    assert credential.allowed_networks == []
    response = HttpClient().get(
        "/api/v1/wallet",
        headers={"X-API-Key": credential.public_key, "X-API-Secret": "old-secret"},
    )
    assert response.status_code == 200
