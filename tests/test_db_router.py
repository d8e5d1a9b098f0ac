"""The replica router: which reads go to the replica alias, and that nothing else does.

The "replica" alias is a test mirror of the default database (tests/settings.py):
what "default" committed, it reads, so these tests are transactional. The router
is off unless a test turns it on (`replica_on`), as it is off in every other test.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, router, transaction

from orders.db_router import reads_from_replica
from orders.models import AuditEvent, Order
from orders.services.audit import audit_record
from tests.factories import OrderFactory
from tests.helpers.replica import REPLICA, queries

pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])


@pytest.fixture
def replica_on(settings):
    settings.DATABASE_REPLICA_ALIAS = REPLICA


def test_inside_the_scope_orders_models_are_read_from_the_replica(replica_on):
    made = OrderFactory()
    with queries() as seen, reads_from_replica():
        read = Order.objects.get(pk=made.pk)
    assert read.reference_code == made.reference_code  # committed on default, read on replica
    assert read._state.db == REPLICA
    assert seen.read_on_replica() == {"orders_order"}
    assert seen.read_on_primary() == set()


def test_outside_the_scope_every_read_is_on_the_primary(replica_on):
    made = OrderFactory()
    with queries() as seen:
        Order.objects.get(pk=made.pk)
    assert seen.read_on_primary() == {"orders_order"}
    assert seen.replica_statements == []


def test_users_and_sessions_are_never_read_from_the_replica(replica_on):
    OrderFactory()
    with queries() as seen, reads_from_replica():
        get_user_model().objects.count()
        Session.objects.count()
    assert seen.read_on_primary() == {"auth_user", "django_session"}
    assert seen.replica_statements == []


def test_a_read_inside_a_transaction_stays_on_the_primary(replica_on):
    made = OrderFactory()
    with queries() as seen, reads_from_replica(), transaction.atomic():
        Order.objects.get(pk=made.pk)
    assert seen.read_on_primary() == {"orders_order"}
    assert seen.replica_statements == []


def test_an_object_read_from_the_replica_is_saved_on_the_primary(replica_on):
    made = OrderFactory(customer_name="Ada")
    with reads_from_replica():
        read = Order.objects.get(pk=made.pk)
        read.customer_name = "Grace"
        with queries() as seen:
            read.save(update_fields=["customer_name"])
    assert seen.replica_statements == []
    assert Order.objects.get(pk=made.pk).customer_name == "Grace"


def test_an_audit_event_recorded_in_the_scope_is_written_on_the_primary(replica_on, system_actor):
    order = OrderFactory()
    with queries() as seen, reads_from_replica():
        audit_record(action="order.exported", actor=system_actor, order_id=order.pk)
    assert seen.written_on_primary() == {"orders_auditevent"}
    assert seen.replica_statements == []
    assert AuditEvent.objects.filter(action="order.exported", order=order).exists()


def test_relations_read_after_the_scope_go_back_to_the_primary(replica_on):
    made = OrderFactory()
    with reads_from_replica():
        read = Order.objects.get(pk=made.pk)
    with queries() as seen:
        assert read.product.name == made.product.name
    assert seen.read_on_primary() == {"orders_product"}
    assert seen.replica_statements == []


def test_migrations_run_on_the_primary_only(replica_on):
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "orders", model_name="order")
    assert not router.allow_migrate(REPLICA, "orders", model_name="order")
    assert not router.allow_migrate(REPLICA, "auth", model_name="user")


def test_objects_of_the_primary_and_the_replica_may_be_related(replica_on):
    made = OrderFactory()
    with reads_from_replica():
        from_replica = Order.objects.select_related("product").get(pk=made.pk)
    assert router.allow_relation(from_replica, made.product)
    assert router.allow_relation(from_replica.product, made)


def test_without_a_replica_the_scope_changes_nothing():
    made = OrderFactory()
    with queries() as seen, reads_from_replica():
        read = Order.objects.get(pk=made.pk)
    assert read._state.db == DEFAULT_DB_ALIAS
    assert seen.read_on_primary() == {"orders_order"}
    assert seen.replica_statements == []
    assert router.db_for_read(Order) == DEFAULT_DB_ALIAS
    assert router.db_for_write(Order) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "orders", model_name="order")
    assert not router.allow_migrate(REPLICA, "orders", model_name="order")
