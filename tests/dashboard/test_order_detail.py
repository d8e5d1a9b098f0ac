"""The order detail: everything about one order, and never a secret before a reveal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import StatusChange
from orders.services.audit import audit_record
from tests.factories import delivered_webhook
from tests.helpers.dashboard import CARD_NUMBER, PIN, REFERENCE

pytestmark = pytest.mark.django_db


def detail(client, order, **headers):
    return client.get(reverse("dashboard:order_detail", args=[order.pk]), **headers)


def test_detail_shows_summary_customer_amounts_items_timeline_webhooks_audit(
    support_client, delivered_order, system_actor
):
    order, _ = delivered_order
    order.fees, order.taxes, order.discount = Decimal("1.50"), Decimal("0.75"), Decimal("2.00")
    order.wallet_currency, order.wallet_amount = "EUR", Decimal("23.40")
    order.exchange_rate = Decimal("0.92")
    order.save()
    StatusChange.objects.create(
        order=order,
        to_status="DELIVERED",
        to_sub_status="INVENTORY_FULFILLED",
        actor_label="system",
    )
    delivered_webhook(order, url="https://hooks.example.com/orders")
    audit_record(action="order.create", actor=system_actor, order_id=order.pk, reason="seeded")

    html = detail(support_client, order).content.decode()
    for text in [
        order.reference_code,
        order.client.name,
        "grace@example.com",
        "+15550100",
        "Nebula Books",
        "25.00 USD",  # face value
        "2.00 USD",
        "1.50 USD",
        "0.75 USD",
        "23.40 EUR",  # charged from a wallet in another currency, with the rate
        "0.92",
        "Inventory fulfilled",
        "by system",
        "order.delivered",
        "https://hooks.example.com/orders",
        "HTTP 503",
        "HTTP 200",
        "order.create",
        "seeded",
        "•••• 0042",
    ]:
        assert text in html, text


def test_detail_never_contains_a_plaintext_secret(support_client, delivered_order):
    order, voucher = delivered_order
    for response in (
        detail(support_client, order),
        detail(support_client, order, HTTP_HX_REQUEST="true"),
        support_client.get(
            reverse("dashboard:voucher_masked", args=[voucher.pk]), HTTP_HX_REQUEST="true"
        ),
    ):
        html = response.content.decode()
        assert CARD_NUMBER not in html
        assert PIN not in html
        assert REFERENCE not in html
        assert "enc:v1:" not in html


def test_reveal_button_only_for_users_who_may_reveal(as_role, delivered_order):
    order, voucher = delivered_order
    action = reverse("dashboard:voucher_reveal", args=[voucher.pk])
    assert action in detail(as_role("support"), order).content.decode()
    assert action in detail(as_role("admin"), order).content.decode()
    finance = detail(as_role("finance"), order).content.decode()
    assert action not in finance
    assert ">Reveal</summary>" not in finance


def test_reveal_form_is_a_real_form_with_a_reason(support_client, delivered_order):
    order, _ = delivered_order
    html = detail(support_client, order).content.decode()
    form = html.split('class="reveal-form"', 1)[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form and "hx-post=" in form
    assert "Customer says code not received" in html
    assert "Fraud / risk review" in html


def test_unknown_order_is_404(support_client):
    assert support_client.get(reverse("dashboard:order_detail", args=[424242])).status_code == 404
    assert (
        support_client.get(
            reverse("dashboard:order_row", args=[424242]), HTTP_HX_REQUEST="true"
        ).status_code
        == 404
    )


def test_masked_voucher_without_htmx_goes_back_to_the_order(support_client, delivered_order):
    order, voucher = delivered_order
    response = support_client.get(reverse("dashboard:voucher_masked", args=[voucher.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:order_detail", args=[order.pk])
