"""A connection the database dropped (a failover, a restart, an operator's
pg_terminate_backend) is noticed before a request uses it: the next order read
or order placed answers as usual, not 503. Each request starts as under a real
server (close_old_connections, which Django's test client leaves out)."""

from __future__ import annotations

import pytest
from django.db import close_old_connections, connection

from orders.models import Order
from tests.factories import add_stock, deliver_order
from tests.helpers.api import order_body

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def drop_the_apps_connection(owner_db):
    def drop() -> None:
        connection.ensure_connection()
        owner_db.execute(
            "SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid]
        )
        close_old_connections()  # what every request does first

    return drop


def test_an_order_read_after_the_database_dropped_the_connection_answers(
    shop, product, drop_the_apps_connection
):
    placed = shop.post("/api/v1/orders", order_body(product, quantity=1))
    order_id = placed.json()["id"]
    deliver_order(Order.objects.get(pk=order_id), add_stock(product, "25.00", 1))
    drop_the_apps_connection()

    response = shop.get(f"/api/v1/orders/{order_id}")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "DELIVERED"


def test_an_order_placed_after_the_database_dropped_the_connection_is_placed(
    shop, product, drop_the_apps_connection
):
    drop_the_apps_connection()

    response = shop.post("/api/v1/orders", order_body(product, reference_code="AFTER-DROP"))

    assert response.status_code == 201, response.content
    assert Order.objects.filter(reference_code="AFTER-DROP").count() == 1
