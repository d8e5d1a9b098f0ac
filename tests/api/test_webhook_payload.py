"""The webhook payload shows an order exactly as the API does: the same schema."""

from __future__ import annotations

import pytest

from orders.models import Order
from orders.representations import OrderSummaryOut
from orders.services.webhooks import order_summary
from tests.factories import add_stock, deliver_order
from tests.helpers.api import order_body

pytestmark = pytest.mark.django_db


def test_webhook_order_is_the_api_summary_plus_event_fields(shop, product):
    created = shop.post("/api/v1/orders", order_body(product, quantity=2))
    assert created.status_code == 201
    order = Order.objects.get(pk=created.json()["id"])
    deliver_order(order, add_stock(product, "25.00", 1))

    listed = shop.get("/api/v1/orders").json()["results"][0]
    payload = order_summary(order=Order.objects.get(pk=order.pk))

    assert set(listed) == set(OrderSummaryOut.model_fields)
    assert {key: payload[key] for key in listed} == listed
    assert payload["status"] == "PARTIALLY_DELIVERED" and payload["delivered_count"] == 1
    assert payload["wallet_amount"] == "50.00" and payload["refund_amount"] == "0.00"
    assert payload["delivered_at"] is None and payload["updated_at"].endswith("Z")
    assert "vouchers" not in payload and "card_number" not in str(payload)
