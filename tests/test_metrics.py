"""/metrics as Prometheus scrapes it: behind METRICS_TOKEN, the business gauges
read from the database, and the counters of what happened in this process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from orders.enums import ItemStatus, OrderStatus, SubStatus
from orders.models import Order
from tests.factories import OrderFactory, OrderItemFactory, VoucherFactory
from tests.helpers.dashboard import client_for

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"


def _scrape(token: str = TOKEN):
    return HttpClient().get("/metrics", headers={"Authorization": f"Bearer {token}"})


def _samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_are_404_until_a_token_is_configured(settings):
    settings.METRICS_TOKEN = ""
    assert _scrape("anything").status_code == 404


def test_metrics_need_the_token(settings):
    settings.METRICS_TOKEN = TOKEN
    assert HttpClient().get("/metrics").status_code == 401
    wrong = _scrape("not-the-token")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert _scrape().status_code == 200


def test_orders_by_status_and_time_to_delivery(settings):
    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    for seconds in (3, 20):
        order = OrderFactory(status=OrderStatus.DELIVERED, sub_status=SubStatus.INVENTORY_FULFILLED)
        Order.objects.filter(pk=order.pk).update(
            placed_at=now - timedelta(seconds=seconds + 60),
            delivered_at=now - timedelta(seconds=60),
        )
    OrderFactory()  # PLACED, waiting
    samples = _samples(_scrape())

    delivered = (("status", "DELIVERED"), ("sub_status", "INVENTORY_FULFILLED"))
    assert samples[("starship_orders", delivered)] == 2
    assert samples[("starship_orders", (("status", "PLACED"), ("sub_status", "INITIAL")))] == 1
    bucket = "starship_order_delivery_seconds_bucket"
    assert samples[(bucket, (("le", "2.0"),))] == 0
    assert samples[(bucket, (("le", "5.0"),))] == 1  # the 3 s one
    assert samples[(bucket, (("le", "30.0"),))] == 2
    assert samples[(bucket, (("le", "+Inf"),))] == 2
    assert samples[("starship_orders_placed_waiting", ())] == 1
    for name in (
        "starship_tasks_ready",
        "starship_refunds_waiting",
        "starship_stock_below_threshold",
        "starship_workers_alive",
        "starship_audit_unsealed",
    ):
        assert (name, ()) in samples, name


def test_reveals_reads_and_requests_are_counted(settings, system_actor):
    settings.METRICS_TOKEN = TOKEN
    voucher = VoucherFactory(status="DELIVERED")
    order = OrderFactory(
        product=voucher.product, status=OrderStatus.DELIVERED, delivered_at=timezone.now()
    )
    OrderItemFactory(order=order, position=1, voucher=voucher, status=ItemStatus.DELIVERED)
    reveals = REGISTRY.get_sample_value("starship_voucher_reveals_total") or 0
    ok_gets = (
        REGISTRY.get_sample_value(
            "starship_http_requests_total", {"method": "GET", "status": "200"}
        )
        or 0
    )

    admin = client_for(_superuser())
    response = admin.post(
        reverse("dashboard:voucher_reveal", args=[voucher.pk]),
        {"reason": "not_received", "note": "ticket 9"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert admin.get(reverse("dashboard:overview")).status_code == 200

    assert REGISTRY.get_sample_value("starship_voucher_reveals_total") == reveals + 1
    gets = REGISTRY.get_sample_value(
        "starship_http_requests_total", {"method": "GET", "status": "200"}
    )
    assert gets == ok_gets + 1
    assert "starship_http_request_duration_seconds_bucket" in _scrape().content.decode()


def test_api_voucher_reads_are_counted(settings, system_actor):
    from tests.helpers.api import make_api_user

    shop = make_api_user("Metrics Shop", system_actor)
    voucher = VoucherFactory(status="DELIVERED")
    order = OrderFactory(
        client=shop.client,
        product=voucher.product,
        status=OrderStatus.DELIVERED,
        delivered_at=timezone.now(),
    )
    OrderItemFactory(order=order, position=1, voucher=voucher, status=ItemStatus.DELIVERED)
    before = REGISTRY.get_sample_value("starship_api_voucher_reads_total") or 0
    assert len(shop.get(f"/api/v1/orders/{order.pk}").json()["vouchers"]) == 1
    assert REGISTRY.get_sample_value("starship_api_voucher_reads_total") == before + 1


def test_metrics_are_not_redirected_to_https(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.SECURE_SSL_REDIRECT = True
    assert _scrape().status_code == 200


def _superuser():
    from tests.factories import UserFactory

    return UserFactory(username="metrics-admin", role="admin")
