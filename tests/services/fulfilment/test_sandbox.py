"""Sandbox triggers, end to end: POST /api/v1/orders with a test key, a real
worker runs fulfilment, GET /api/v1/orders/{id} shows the forced outcome.

On PostgreSQL the worker is `manage.py run_worker` in a subprocess; on SQLite
(an in-memory test database a subprocess cannot open) the same db_worker loop
runs in this process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client as HttpClient

from orders.models import Order, Wallet, WalletEntry
from tests.factories import stock
from tests.helpers.tasks import TERMINAL, run_ready_tasks, wait_until

pytestmark = [pytest.mark.engines, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_tick(request, settings) -> Callable[[], None] | None:
    """Start a real worker; return what the test must call while waiting (if anything)."""
    settings.FULFILMENT_RETRY_BASE_SECONDS = 1
    if connection.vendor == "postgresql":
        request.getfixturevalue("workers").start()
        return None
    return run_ready_tasks


def _post_order(http, buyer, product, reference_code, *, quantity=1, sandbox=True):
    response = http.post(
        "/api/v1/orders",
        data=json.dumps(
            {
                "product_id": product.pk,
                "denomination": "25.00",
                "quantity": quantity,
                "reference_code": reference_code,
                "customer": {"name": "Ada", "email": "ada@example.com"},
            }
        ),
        content_type="application/json",
        headers=buyer.api_headers(sandbox=sandbox),
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


# reference_code prefix, quantity -> status, vouchers returned, refund, timeline steps
SCENARIOS = {
    "SANDBOX-DELAYED-": (1, "DELIVERED", 1, "0.00", ["VENDOR_ORDER_CREATED"]),
    "SANDBOX-RETRY-": (1, "DELIVERED", 1, "0.00", ["PENDING_REPROCESS"] * 2),
    "SANDBOX-FAIL-": (2, "FAILED", 0, "50.00", ["VENDOR_ORDER_FAILED"]),
    "SANDBOX-PARTIAL-": (3, "PARTIALLY_DELIVERED", 1, "50.00", ["VENDOR_ORDER_CREATED"]),
}


def test_each_sandbox_trigger_forces_its_documented_outcome(worker_tick, buyer, product):
    # One worker for every scenario: starting Django in a subprocess is the slow part.
    stock(product, 10)  # inventory exists: the triggers skip it all the same
    http = HttpClient()
    placed = {
        prefix: _post_order(http, buyer, product, f"{prefix}42", quantity=quantity)
        for prefix, (quantity, *_) in SCENARIOS.items()
    }
    live_id = _post_order(http, buyer, product, "SANDBOX-FAIL-live", sandbox=False)

    ids = [*placed.values(), live_id]
    wait_until(
        lambda: Order.objects.filter(pk__in=ids, status__in=TERMINAL).count() == len(ids),
        tick=worker_tick,
        timeout=90,
        what="every sandbox order to finish",
    )

    for prefix, (_, status, delivered, refund, timeline) in SCENARIOS.items():
        order = Order.objects.get(pk=placed[prefix])
        body = http.get(f"/api/v1/orders/{order.pk}", headers=buyer.api_headers(sandbox=True))
        assert body.json()["status"] == status == order.status, prefix
        assert len(body.json()["vouchers"]) == delivered, prefix
        assert order.items.filter(voucher__source="IMPORT").count() == 0, prefix
        subs = list(order.status_changes.values_list("to_sub_status", flat=True))
        for step in timeline:
            assert subs.count(step) >= timeline.count(step), (prefix, subs)
        assert order.refund_amount == Decimal(refund), prefix
        refunds = WalletEntry.objects.filter(order=order, kind="REFUND").count()
        assert refunds == (0 if refund == "0.00" else 1), prefix
    # The prefix means nothing to a live key: inventory delivers it.
    live = Order.objects.get(pk=live_id)
    assert (live.status, live.sub_status) == ("DELIVERED", "INVENTORY_FULFILLED")
    charged = sum(Order.objects.filter(pk__in=ids).values_list("wallet_amount", flat=True))
    refunded = Decimal("100.00")
    assert Wallet.objects.get(pk=buyer.wallet.pk).balance == Decimal("5000.00") - charged + refunded
