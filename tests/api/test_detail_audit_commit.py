"""The audit event of an order read is committed before the answer leaves the server.

A probe placed first in MIDDLEWARE (so it holds the response last, right before
the WSGI handler sends it) asks a second database connection whether the read's
event is committed. A streamed answer is also checked before its first byte is
read. Transactional tests: the request runs in autocommit, as in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponseBase

from orders.models import Order
from orders.selectors.orders import DETAIL_CHUNK
from tests.factories import add_stock, deliver_order
from tests.helpers.api import ApiUser, order_body
from tests.helpers.orders import delivered_order

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DETAIL_PATH = re.compile(r"^/api/v1/orders/(\d+)$")


def committed_reads(order_id: int) -> int:
    """Read events of the order that another connection sees (committed ones only)."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    ) as other:
        row = other.execute(
            "SELECT count(*) FROM orders_auditevent"
            " WHERE action = 'voucher.read_api' AND order_id = %s",
            [order_id],
        ).fetchone()
    assert row is not None
    return int(row[0])


class CommittedAuditProbe:
    """Notes on the response how many read events of the order were committed when
    the response left the last middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        match = DETAIL_PATH.match(request.path)
        if match and response.status_code == 200:
            response.committed_reads = committed_reads(int(match[1]))  # type: ignore[attr-defined]
        return response


@pytest.fixture(autouse=True)
def _probe(settings: Any) -> None:
    settings.MIDDLEWARE = [f"{__name__}.CommittedAuditProbe", *settings.MIDDLEWARE]


def _delivered(shop: ApiUser, product: Any, units: int) -> int:
    response = shop.post("/api/v1/orders", order_body(product, quantity=units))
    assert response.status_code == 201, response.content
    order_id = response.json()["id"]
    deliver_order(Order.objects.get(pk=order_id), add_stock(product, "25.00", units))
    return order_id


def test_the_read_event_is_committed_before_the_answer_is_sent(shop, product):
    order_id = _delivered(shop, product, 2)

    first = shop.get(f"/api/v1/orders/{order_id}")
    second = shop.get(f"/api/v1/orders/{order_id}")

    assert first.status_code == second.status_code == 200
    assert len(first.json()["vouchers"]) == 2
    assert (first.committed_reads, second.committed_reads) == (1, 2)


def test_a_streamed_answer_is_audited_before_its_first_byte(shop):
    order_id = delivered_order(shop.client, DETAIL_CHUNK + 1).pk

    response = shop.get(f"/api/v1/orders/{order_id}")

    assert response.streaming
    assert response.committed_reads == 1
    assert committed_reads(order_id) == 1  # and still nothing of the body read
    body = b"".join(response.streaming_content)
    assert body.count(b'"card_number"') == DETAIL_CHUNK + 1


def test_an_order_without_vouchers_writes_no_event(shop, product):
    response = shop.post("/api/v1/orders", order_body(product))
    order_id = response.json()["id"]

    read = shop.get(f"/api/v1/orders/{order_id}")

    assert read.json()["vouchers"] == []
    assert read.committed_reads == 0
