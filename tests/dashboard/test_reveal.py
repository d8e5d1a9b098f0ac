"""Voucher reveal from the dashboard: audited, no-store, rate limited, permission-checked."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.enums import InventoryStatus, ItemStatus, OrderStatus, SubStatus
from orders.models import AuditEvent
from orders.services import reveal as reveal_service
from tests.factories import OrderFactory, OrderItemFactory, VoucherFactory
from tests.helpers.dashboard import CARD_NUMBER, PIN, REFERENCE

pytestmark = pytest.mark.django_db


def reveal(client, voucher, *, htmx=True, reason="not_received", note="ticket 42"):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(
        reverse("dashboard:voucher_reveal", args=[voucher.pk]),
        {"reason": reason, "note": note},
        **headers,
    )


def test_reveal_shows_the_code_and_writes_exactly_one_audit_event(
    support_client, users, delivered_order
):
    order, voucher = delivered_order
    response = reveal(support_client, voucher)
    assert response.status_code == 200
    html = response.content.decode()
    assert CARD_NUMBER in html and PIN in html and REFERENCE in html
    assert "Expires within 30 days" in html
    assert 'data-remask-after="30"' in html
    assert 'hx-history="false"' in html
    assert response["HX-Trigger"] == "voucherRevealed"
    events = list(AuditEvent.objects.filter(action="voucher.reveal"))
    assert len(events) == 1
    event = events[0]
    assert event.actor_user_id == users["support"].pk
    assert event.voucher_id == voucher.pk
    assert event.order_id == order.pk
    assert event.reason == "Customer says code not received: ticket 42"
    assert event.ip_address == "10.1.2.3"
    assert event.user_agent == "pytest-browser/1.0"
    assert CARD_NUMBER not in str(event.data) and PIN not in event.reason


@pytest.mark.parametrize("htmx", [True, False])
def test_reveal_responses_are_never_stored(support_client, delivered_order, htmx):
    _, voucher = delivered_order
    response = reveal(support_client, voucher, htmx=htmx)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_without_js_the_reveal_is_a_full_page(support_client, delivered_order):
    order, voucher = delivered_order
    response = reveal(support_client, voucher, htmx=False)
    html = response.content.decode()
    assert "<html" in html and CARD_NUMBER in html
    assert reverse("dashboard:order_detail", args=[order.pk]) in html


def test_get_never_reveals(support_client, delivered_order):
    _, voucher = delivered_order
    response = support_client.get(reverse("dashboard:voucher_reveal", args=[voucher.pk]))
    assert response.status_code == 405
    assert CARD_NUMBER.encode() not in response.content
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_claim_url_opens_in_a_new_tab_without_an_opener(support_client, delivered_order):
    order, _ = delivered_order
    url_voucher = VoucherFactory(
        product=order.product,
        claim_url="https://claim.example.com/v/abc",
        status=InventoryStatus.DELIVERED,
    )
    OrderItemFactory(order=order, position=2, voucher=url_voucher, status=ItemStatus.DELIVERED)
    html = reveal(support_client, url_voucher).content.decode()
    assert 'href="https://claim.example.com/v/abc"' in html
    assert 'target="_blank" rel="noopener noreferrer"' in html


def test_a_javascript_claim_url_is_never_a_link(support_client, delivered_order):
    order, _ = delivered_order
    bad = VoucherFactory(
        product=order.product, claim_url="javascript:alert(1)", status=InventoryStatus.DELIVERED
    )
    OrderItemFactory(order=order, position=2, voucher=bad, status=ItemStatus.DELIVERED)
    html = reveal(support_client, bad).content.decode()
    assert 'href="javascript:' not in html


def test_reveal_refused_for_a_voucher_that_was_not_delivered(support_client):
    order = OrderFactory(status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING)
    voucher = VoucherFactory(product=order.product, status=InventoryStatus.ALLOCATED)
    OrderItemFactory(order=order, position=1, voucher=voucher)
    response = reveal(support_client, voucher)
    assert response.status_code == 409
    html = response.content.decode()
    assert "Only delivered vouchers" in html
    assert voucher.card_last4 in html and "4111" not in html.replace(voucher.card_last4, "")
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_reveal_needs_a_reason(support_client, delivered_order):
    _, voucher = delivered_order
    response = reveal(support_client, voucher, reason="", note="")
    assert response.status_code == 422
    assert CARD_NUMBER not in response.content.decode()
    response = reveal(support_client, voucher, reason="other", note="")
    assert response.status_code == 422
    assert "Say why" in response.content.decode()
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


@pytest.mark.parametrize("role", ["finance", "inventory"])
def test_roles_without_the_permission_get_403_and_no_audit(as_role, delivered_order, role):
    _, voucher = delivered_order
    response = reveal(as_role(role), voucher)
    assert response.status_code == 403
    assert CARD_NUMBER not in response.content.decode()
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_rate_limit_per_user_with_a_clear_message(as_role, delivered_order, settings, monkeypatch):
    settings.REVEAL_RATE_PER_HOUR = 3
    # The limit counts per clock hour: hold the clock ten minutes into one, so a run
    # that crosses the hour does not start a new count halfway.
    now = (time.time() // 3600) * 3600 + 600
    monkeypatch.setattr(reveal_service.time, "time", lambda: now)
    _, voucher = delivered_order
    support = as_role("support")
    for _ in range(3):
        assert reveal(support, voucher).status_code == 200
    limited = reveal(support, voucher)
    assert limited.status_code == 429
    html = limited.content.decode()
    assert "limit of 3 reveals per hour" in html
    assert CARD_NUMBER not in html
    assert AuditEvent.objects.filter(action="voucher.reveal").count() == 3
    # The limit is per user: an admin is not held back by the support agent.
    assert reveal(as_role("admin"), voucher).status_code == 200


def test_expiry_warning_only_when_close(support_client, delivered_order):
    _, voucher = delivered_order
    voucher.expires_at = timezone.now() + timedelta(days=200)
    voucher.save()
    assert "Expires within 30 days" not in reveal(support_client, voucher).content.decode()
