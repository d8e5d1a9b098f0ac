"""The audit log page: admins only, filters, keyset pages on (created_at, id)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orders.models import AuditEvent
from orders.services.actors import Actor
from orders.services.audit import audit_record
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:audit_log")


def event_ids(response) -> list[int]:
    return [e.pk for e in response.context["page"].items]


@pytest.fixture
def events(users):
    order = OrderFactory()
    support = Actor.for_user(users["support"], ip_address="10.0.0.9")
    made = []
    for i in range(120):
        made.append(
            audit_record(
                action="voucher.reveal" if i % 2 else "order.cancel",
                actor=support if i % 3 == 0 else Actor.system(),
                order_id=order.pk if i % 4 == 0 else None,
                reason=f"reason {i}",
            )
        )
    return order, made


def test_admin_sees_the_log_with_filters(as_role, users, events):
    order, made = events
    admin = as_role("admin")
    page = admin.get(URL)
    assert page.status_code == 200
    newest = sorted(made, key=lambda e: (e.created_at, e.pk), reverse=True)
    assert event_ids(page) == [e.pk for e in newest[:50]]
    by_user = admin.get(URL, {"user": users["support"].pk})
    assert event_ids(by_user) and all(
        AuditEvent.objects.get(pk=pk).actor_user_id == users["support"].pk
        for pk in event_ids(by_user)
    )
    by_action = admin.get(URL, {"action": "order.cancel"})
    assert all(
        AuditEvent.objects.get(pk=pk).action == "order.cancel" for pk in event_ids(by_action)
    )
    by_order = admin.get(URL, {"order": order.pk})
    assert len(event_ids(by_order)) == 30
    today = timezone.localdate()
    future = admin.get(URL, {"created_from": (today + timedelta(days=1)).isoformat()})
    assert event_ids(future) == []
    assert "No audit events match" in future.content.decode()


def test_keyset_pages_round_trip(as_role, events):
    _, made = events
    admin = as_role("admin")
    first = admin.get(URL)
    second = admin.get(URL, {"cursor": first.context["page"].next_cursor})
    third = admin.get(URL, {"cursor": second.context["page"].next_cursor})
    assert len(event_ids(third)) == 20 and third.context["page"].next_cursor is None
    back = admin.get(URL, {"cursor": third.context["page"].prev_cursor})
    assert event_ids(back) == event_ids(second)
    seen = event_ids(first) + event_ids(second) + event_ids(third)
    assert sorted(seen) == sorted(e.pk for e in made)


def test_bad_filters_are_messages(as_role, events):
    admin = as_role("admin")
    response = admin.get(URL, {"order": "abc", "action": "nope"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a whole number" in html and "Select a valid choice" in html


def test_htmx_gets_the_results_partial(as_role, events):
    response = as_role("admin").get(URL, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content and b'id="audit-results"' in response.content
