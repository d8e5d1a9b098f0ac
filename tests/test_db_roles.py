"""The application's database role owns no tables: it cannot erase or edit the audit
trail, nor switch its triggers off, yet does all its work (PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from orders.models import Client
from orders.services.actors import Actor
from orders.services.audit import audit_chain_problems, audit_record, audit_seal
from orders.services.clients import client_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
        c.execute(sql)
    return str(caught.value)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE orders_auditevent SET reason = 'edited'",
        "UPDATE orders_auditevent SET created_at = now(), sealed_at = now()",
        "DELETE FROM orders_auditevent",
        "TRUNCATE orders_auditevent",
    ],
    ids=["update", "update-content-while-sealing", "delete", "truncate"],
)
def test_the_app_role_may_not_change_or_erase_the_audit_trail(as_app_role, sql):
    assert "permission denied for table orders_auditevent" in refused(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE orders_auditevent DISABLE TRIGGER ALL",
        "ALTER TABLE orders_auditevent DISABLE TRIGGER orders_auditevent_no_truncate",
        "DROP TRIGGER orders_auditevent_no_update_delete ON orders_auditevent",
    ],
    ids=["disable-all", "disable-truncate-trigger", "drop-trigger"],
)
def test_the_app_role_can_never_switch_the_audit_triggers_off(as_app_role, sql):
    assert "must be owner of" in refused(sql)


def test_the_app_role_owns_no_table(as_app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            " AND tableowner = current_user"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (as_app_role,)


def test_the_app_role_does_its_work_and_appends_audit_events(as_app_role, system_actor):
    client, wallet, _ = client_create(
        name="Orbital", currency="USD", balance="10.00", actor=system_actor
    )
    Client.objects.filter(pk=client.pk).update(name="Orbital Rewards")
    audit_record(action="order.create", actor=Actor.system("support:alice"), order_id=3)
    assert audit_seal() >= 1  # the worker's sealer runs as the role too

    wallet.refresh_from_db()
    assert str(wallet.balance) == "10.00"
    assert Client.objects.get(pk=client.pk).name == "Orbital Rewards"
    assert list(audit_chain_problems()) == []


def test_the_app_role_may_update_only_the_seal_of_an_audit_event(as_app_role, system_actor):
    event = audit_record(action="order.create", actor=system_actor, order_id=4)
    audit_seal()

    # Column privileges let it write the seal's columns; the trigger refuses a second seal.
    assert "append-only: UPDATE is not allowed" in refused(
        "UPDATE orders_auditevent SET hash = 'forged'"
    )
    event.refresh_from_db()
    assert event.sealed_at is not None and event.hash != "forged"
