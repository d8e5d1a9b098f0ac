"""Order list selector: filters, search and keyset pagination both ways."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.enums import OrderStatus
from orders.errors import ValidationFailed
from orders.selectors.orders import OrderFilters, order_list
from tests.factories import ClientFactory, OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders():
    start = timezone.now() - timedelta(days=1)
    client = ClientFactory()
    # Two orders share a timestamp so the id breaks the tie.
    made = [
        OrderFactory(client=client, placed_at=start + timedelta(minutes=i // 2)) for i in range(7)
    ]
    return client, made


def test_pages_walk_newest_first_and_back_without_gaps(orders):
    _, made = orders
    expected = sorted(made, key=lambda o: (o.placed_at, o.pk), reverse=True)

    seen, cursor, pages = [], None, []
    while True:
        page = order_list(filters=OrderFilters(), cursor=cursor, limit=3)
        pages.append(page)
        seen.extend(page.items)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert [o.pk for o in seen] == [o.pk for o in expected]
    assert pages[0].prev_cursor is None

    back = order_list(filters=OrderFilters(), cursor=pages[-1].prev_cursor, limit=3)
    assert [o.pk for o in back.items] == [o.pk for o in pages[-2].items]


def test_oldest_first(orders):
    _, made = orders
    page = order_list(filters=OrderFilters(), limit=2, newest_first=False)
    expected = sorted(made, key=lambda o: (o.placed_at, o.pk))[:2]
    assert [o.pk for o in page.items] == [o.pk for o in expected]


def test_filters_and_search(orders):
    client, made = orders
    target = made[3]
    target.status = OrderStatus.DELIVERED
    target.customer_email = "grace@example.com"
    target.customer_phone = "+15550100"
    target.save()
    other_client_order = OrderFactory(reference_code=target.reference_code)

    by_status = order_list(filters=OrderFilters(statuses=[OrderStatus.DELIVERED]))
    assert [o.pk for o in by_status.items] == [target.pk]
    mine = order_list(filters=OrderFilters(client_id=client.pk, search=target.reference_code))
    assert [o.pk for o in mine.items] == [target.pk]
    everyone = order_list(filters=OrderFilters(search=target.reference_code))
    assert {o.pk for o in everyone.items} == {target.pk, other_client_order.pk}
    for term in (str(target.pk), f"#{target.pk}", "GRACE@example.com", "+15550100"):
        found = order_list(filters=OrderFilters(client_id=client.pk, search=term))
        assert [o.pk for o in found.items] == [target.pk], term


def test_a_garbled_cursor_is_a_clear_validation_error(orders):
    with pytest.raises(ValidationFailed, match="cursor is not valid"):
        order_list(filters=OrderFilters(), cursor="not-a-cursor")
