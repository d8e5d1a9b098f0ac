"""The deployment as it runs: orders placed over the API through gunicorn are
delivered by `run_worker`, and a worker SIGKILLed in the middle of a vendor
call loses and doubles nothing once a worker runs again. On both task engines
(CI runs the `engines` tests again with TASKS_BACKEND=django_tasks_rq.RQBackend
and REDIS_URL: the web host queues on RQ, the worker runs RQ's worker)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from orders.models import Order, OrderItem
from orders.services.fulfilment import order_fulfil_task
from tests.factories import stock
from tests.helpers.fulfilment import assert_nothing_lost_or_doubled
from tests.helpers.servers import gunicorn_hosts
from tests.helpers.tasks import all_terminal, running_tasks, wait_until, waiting_task_args

pytestmark = [pytest.mark.postgres, pytest.mark.engines, pytest.mark.django_db(transaction=True)]

# Each order gets a task of its own, queued by the web host (on RQ: in Redis).
ENV = {
    "FULFILMENT_STOCK_BATCHER": "0",
    "API_RATE_LIMIT_PER_MINUTE": "10000",
    "API_RATE_LIMIT_PER_10_SECONDS": "10000",
    "API_RATE_LIMIT_ORDER_READS_PER_HOUR": "10000",
}


def _place(api: httpx.Client, buyer, product, reference: str, quantity: int) -> int:
    response = api.post(
        "/api/v1/orders",
        json={
            "product_id": product.pk,
            "denomination": "25.00",
            "quantity": quantity,
            "reference_code": reference,
            "customer": {"name": "Ada", "email": "ada@example.com"},
        },
        headers=buyer.api_headers(),
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_orders_placed_over_the_api_survive_a_killed_worker_delivered_once(
    workers, buyer, product, tmp_path: Path
):
    stock(product, 4)  # 12 units ordered: the (slow) vendor sells the rest
    with gunicorn_hosts(tmp_path, 1, **ENV) as (url,), httpx.Client(base_url=url) as api:
        ids = [_place(api, buyer, product, f"GUNI-{n}", 1 + n % 2) for n in range(8)]

        assert len(waiting_task_args(order_fulfil_task)) == len(ids)
        first = workers.start(VENDOR_SIM_LATENCY_MS="300", FULFILMENT_STOCK_BATCHER="0")
        wait_until(lambda: running_tasks() >= 1, timeout=60, what="a vendor call in flight")
        workers.kill(first)
        assert not all_terminal(ids)

        workers.start(VENDOR_SIM_LATENCY_MS="0", FULFILMENT_STOCK_BATCHER="0")
        wait_until(lambda: all_terminal(ids), timeout=90, what="every order to finish")

        details = [api.get(f"/api/v1/orders/{pk}", headers=buyer.api_headers()) for pk in ids]
    assert [d.status_code for d in details] == [200] * len(ids)
    assert {d.json()["status"] for d in details} == {"DELIVERED"}
    for detail in details:  # what the partner reads: one code per unit bought
        order = detail.json()
        assert len(order["vouchers"]) == order["quantity"]
    assert OrderItem.objects.filter(order_id__in=ids, status="DELIVERED").count() == 12
    assert Order.objects.filter(pk__in=ids, status="DELIVERED").count() == len(ids)
    assert_nothing_lost_or_doubled(buyer, ids)
