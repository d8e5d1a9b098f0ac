"""The order list: filters, search, keyset pages, live rows, bad input, query count."""

from __future__ import annotations

import html
from datetime import timedelta
from urllib.parse import urljoin

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.enums import OrderStatus, SubStatus
from orders.models import WalletEntry
from tests.factories import ClientFactory, OrderFactory, ProductFactory, WalletFactory

pytestmark = pytest.mark.django_db
URL = reverse("dashboard:order_list")


def ids_in(response) -> list[int]:
    html = response.content.decode()
    return [int(chunk.split('"', 1)[0]) for chunk in html.split('id="order-row-')[1:]]


@pytest.fixture
def catalogue():
    """Orders spread over statuses, products, clients and days."""
    now = timezone.now()
    books, coffee = ProductFactory(name="Nebula Books"), ProductFactory(name="Orbit Coffee")
    acme, zen = ClientFactory(name="Acme"), ClientFactory(name="Zenith")
    made = {
        "instant": OrderFactory(
            product=books,
            client=acme,
            status=OrderStatus.DELIVERED,
            sub_status=SubStatus.INVENTORY_FULFILLED,
            placed_at=now - timedelta(days=3),
        ),
        "vendor": OrderFactory(
            product=coffee,
            client=zen,
            status=OrderStatus.DELIVERED,
            sub_status=SubStatus.VENDOR_VOUCHER_FETCHED,
            placed_at=now - timedelta(days=2),
        ),
        "failed": OrderFactory(
            product=coffee,
            client=acme,
            status=OrderStatus.FAILED,
            sub_status=SubStatus.VENDOR_ORDER_FAILED,
            placed_at=now - timedelta(days=1),
            customer_email="grace@example.com",
            customer_phone="+15550100",
        ),
        "pending": OrderFactory(
            product=books,
            client=zen,
            status=OrderStatus.PENDING,
            sub_status=SubStatus.PENDING_REPROCESS,
            # Today at any hour of the day the test runs (an hour ago is yesterday
            # from 00:00 to 01:00).
            placed_at=now,
            reference_code="PO-SEARCH-ME",
        ),
    }
    return made, books, acme


def test_plain_page_and_htmx_partial(support_client, catalogue):
    page = support_client.get(URL)
    assert page.status_code == 200
    assert b'<form class="card filters" method="get"' in page.content
    partial = support_client.get(URL, HTTP_HX_REQUEST="true")
    assert b"<form" not in partial.content
    assert len(ids_in(partial)) == 4


def test_filter_form_is_htmx_enhanced_and_works_without_js(support_client, catalogue):
    html = support_client.get(URL).content.decode()
    form = html[html.index('<form class="card filters"') :].split(">", 1)[0]
    assert f'action="{URL}"' in form and 'method="get"' in form
    assert 'hx-push-url="true"' in form and 'hx-target="#order-results"' in form


def test_several_statuses_at_once(support_client, catalogue):
    made, *_ = catalogue
    response = support_client.get(URL, {"status": ["FAILED", "PENDING"]})
    assert sorted(ids_in(response)) == sorted([made["failed"].pk, made["pending"].pk])


def test_status_checkboxes_stay_checked(support_client, catalogue):
    html = support_client.get(URL, {"status": ["FAILED"]}).content.decode()
    box = (
        html.split('value="FAILED"', 1)[0].rsplit("<input", 1)[1]
        + html.split('value="FAILED"', 1)[1].split(">", 1)[0]
    )
    assert "checked" in box


def test_sub_status_product_client_and_dates(support_client, catalogue):
    made, books, acme = catalogue
    assert ids_in(support_client.get(URL, {"sub_status": "PENDING_REPROCESS"})) == [
        made["pending"].pk
    ]
    assert sorted(ids_in(support_client.get(URL, {"product": books.pk}))) == sorted(
        [made["instant"].pk, made["pending"].pk]
    )
    assert sorted(ids_in(support_client.get(URL, {"client": acme.pk}))) == sorted(
        [made["instant"].pk, made["failed"].pk]
    )
    today = timezone.localdate()
    response = support_client.get(
        URL,
        {
            "placed_from": (today - timedelta(days=2)).isoformat(),
            "placed_to": (today - timedelta(days=1)).isoformat(),
        },
    )
    assert sorted(ids_in(response)) == sorted([made["vendor"].pk, made["failed"].pk])


def test_combined_filters(support_client, catalogue):
    made, books, acme = catalogue
    response = support_client.get(
        URL, {"product": books.pk, "client": acme.pk, "status": "DELIVERED"}
    )
    assert ids_in(response) == [made["instant"].pk]


def test_delivery_time_instant_and_delayed(support_client, catalogue):
    made, *_ = catalogue
    assert ids_in(support_client.get(URL, {"delivery_time": "INSTANT"})) == [made["instant"].pk]
    delayed = ids_in(support_client.get(URL, {"delivery_time": "DELAYED"}))
    assert sorted(delayed) == sorted([made["vendor"].pk, made["failed"].pk, made["pending"].pk])
    page = support_client.get(URL).content.decode()
    assert "Instant: fulfilled from our inventory" in page


def test_search_by_id_reference_transaction_email_and_phone(support_client, catalogue):
    made, *_ = catalogue
    failed = made["failed"]
    wallet = WalletFactory(client=failed.client)
    entry = WalletEntry.objects.create(
        wallet=wallet, kind="ORDER_DEBIT", amount=-10, balance_after=0, order=failed
    )
    failed.transaction = entry
    failed.save(update_fields=["transaction"])
    for term in [
        str(failed.pk),
        f"#{failed.pk}",
        "grace@example.com",
        "GRACE@example.com",
        "+15550100",
    ]:
        assert failed.pk in ids_in(support_client.get(URL, {"q": term})), term
    assert ids_in(support_client.get(URL, {"q": "PO-SEARCH-ME"})) == [made["pending"].pk]
    assert failed.pk in ids_in(support_client.get(URL, {"q": str(entry.pk)}))
    assert ids_in(support_client.get(URL, {"q": "nobody@example.com"})) == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "SHIPPED"}, "Select a valid choice"),
        ({"placed_from": "yesterday"}, "Enter a valid date"),
        ({"placed_from": "2026-02-10", "placed_to": "2026-02-01"}, "must be on or after"),
        ({"product": "abc"}, "Select a valid choice"),
        ({"cursor": "not-a-cursor"}, "cursor is not valid"),
        ({"sub_status": "INVENTORY_FULFILLED", "delivery_time": "DELAYED"}, "never has delivery"),
    ],
)
def test_bad_filter_input_is_a_clear_message_not_a_500(support_client, catalogue, params, message):
    response = support_client.get(URL, params)
    assert response.status_code == 400
    assert message in response.content.decode()
    htmx = support_client.get(URL, params, HTTP_HX_REQUEST="true")
    assert message in htmx.content.decode()


def test_keyset_pages_older_and_back_newer(support_client, settings):
    start = timezone.now() - timedelta(days=1)
    client, product = ClientFactory(), ProductFactory()
    made = [
        OrderFactory(client=client, product=product, placed_at=start + timedelta(minutes=i // 2))
        for i in range(60)
    ]
    expected = [o.pk for o in sorted(made, key=lambda o: (o.placed_at, o.pk), reverse=True)]
    first = support_client.get(URL)
    assert ids_in(first) == expected[:25]
    assert first.context["page"].prev_cursor is None
    older = support_client.get(URL, {"cursor": first.context["page"].next_cursor})
    assert ids_in(older) == expected[25:50]
    last = support_client.get(URL, {"cursor": older.context["page"].next_cursor})
    assert ids_in(last) == expected[50:]
    assert last.context["page"].next_cursor is None
    back = support_client.get(URL, {"cursor": last.context["page"].prev_cursor})
    assert ids_in(back) == expected[25:50]
    html = older.content.decode()
    assert 'rel="next"' in html and 'rel="prev"' in html
    oldest = support_client.get(URL, {"sort": "oldest"})
    assert ids_in(oldest) == list(reversed(expected))[:25]


def test_pagination_links_keep_the_filters(support_client):
    product = ProductFactory()
    for _ in range(30):
        OrderFactory(
            product=product, status=OrderStatus.FAILED, sub_status=SubStatus.VENDOR_ORDER_FAILED
        )
    html = support_client.get(URL, {"status": "FAILED"}).content.decode()
    link = html.split('rel="next" href="', 1)[1].split('"', 1)[0]
    assert "status=FAILED" in link and "cursor=" in link


def test_rows_of_open_orders_poll_and_terminal_rows_do_not(support_client, catalogue):
    made, *_ = catalogue
    html = support_client.get(URL).content.decode()

    def row(order):
        return html.split(f'id="order-row-{order.pk}"', 1)[1].split(">", 1)[0]

    assert 'hx-trigger="every 5s"' in row(made["pending"])
    assert reverse("dashboard:order_row", args=[made["pending"].pk]) in row(made["pending"])
    assert "hx-trigger" not in row(made["failed"])


def test_the_row_fragment_stops_polling_once_terminal(support_client, catalogue):
    made, *_ = catalogue
    pending = made["pending"]
    url = reverse("dashboard:order_row", args=[pending.pk])
    assert (
        'hx-trigger="every 5s"' in support_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    )
    pending.status, pending.sub_status = OrderStatus.DELIVERED, SubStatus.VENDOR_VOUCHER_FETCHED
    pending.save()
    fragment = support_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment
    assert "Delivered" in fragment
    assert fragment.lstrip().startswith("<tr")


def test_rows_show_badges_amounts_and_times(support_client, catalogue):
    made, *_ = catalogue
    html = support_client.get(URL).content.decode()
    assert 'data-status="FAILED"' in html and "✕" in html and "Failed" in html
    assert "25.00 USD" in html
    placed = made["failed"].placed_at
    assert f'<time datetime="{placed.isoformat()}"' in html
    assert "1 day ago" in html


def _list_queries(client) -> int:
    client.get(URL)  # the first request of a session refreshes its idle timeout (a write)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_rows(support_client):
    products = [ProductFactory() for _ in range(3)]
    clients = [ClientFactory() for _ in range(3)]
    for i in range(5):
        OrderFactory(product=products[i % 3], client=clients[i % 3])
    five = _list_queries(support_client)
    for i in range(45):
        OrderFactory(product=products[i % 3], client=clients[i % 3])
    fifty = _list_queries(support_client)
    assert fifty == five


def test_the_list_never_counts_or_offsets(support_client, catalogue):
    with CaptureQueriesContext(connection) as queries:
        support_client.get(URL, {"status": "DELIVERED"})
    order_sql = [q["sql"] for q in queries if 'FROM "orders_order"' in q["sql"]]
    assert order_sql
    assert not any("COUNT(" in sql.upper() or "OFFSET" in sql.upper() for sql in order_sql)


def test_following_the_older_link_shows_the_next_page(support_client):
    """The link's href, resolved as a browser does, moves to the next page."""
    product = ProductFactory()
    for _ in range(30):
        OrderFactory(product=product, status=OrderStatus.FAILED)
    first = support_client.get(URL, {"status": "FAILED"})
    href = html.unescape(first.content.decode().split('rel="next" href="', 1)[1].split('"', 1)[0])
    assert href.startswith("?") and not href.startswith("??")
    older = support_client.get(urljoin(URL, href))
    assert ids_in(older) and not set(ids_in(older)) & set(ids_in(first))
    assert len(ids_in(first)) + len(ids_in(older)) == 30
