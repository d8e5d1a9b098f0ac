"""Benchmark: the dashboard order list over 200,000 orders in PostgreSQL.

Not a test. Creates (once) its own database `bench_dash`, fills it with
orders by SQL generate_series, then times through django.test.Client:
the first page, a page 1,000 pages deep (by keyset cursor), a status-filtered
page and a search. Prints the median of several runs in milliseconds.

    .venv/bin/python bench/dashboard_list.py [--orders 200000] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "bench_dash"
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def ensure_database() -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB}"')


def fill(orders: int) -> None:
    from django.db import connection

    from orders.models import Client, Order, Product, Vendor

    have = Order.objects.count()
    if have >= orders:
        print(f"{have} orders already in {DB}")
        return
    vendor, _ = Vendor.objects.get_or_create(code="bench", defaults={"name": "Bench vendor"})
    products = [
        Product.objects.get_or_create(
            name=f"Bench Card {i}",
            defaults=dict(
                vendor=vendor,
                brand="Bench",
                kind="GIFT_CARD",
                currency="USD",
                denominations=["10.00", "25.00"],
                delivery_type="CODE_WITH_PIN",
            ),
        )[0]
        for i in range(20)
    ]
    clients = [Client.objects.get_or_create(name=f"Bench Client {i}")[0] for i in range(50)]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (
                client_id, product_id, reference_code, request_hash, product_name, product_brand,
                product_kind, delivery_type, currency, denomination, quantity, face_value,
                discount, fees, taxes, amount, wallet_currency, exchange_rate, wallet_amount,
                payment_method, status, sub_status, failure_reason, customer_name,
                customer_email, customer_phone, recipient_phone, placed_at, updated_at,
                delivered_at, attempts, vendor_order_ref, refund_status, refund_amount
            )
            SELECT
                %(c0)s + (g %% 50), %(p0)s + (g %% 20), 'BENCH-' || (g + %(offset)s), '',
                'Bench Card', 'Bench', 'GIFT_CARD', 'CODE_WITH_PIN', 'USD', 25, 1, 25,
                0, 0, 0, 25, 'USD', 1, 25, 'WALLET',
                (ARRAY['DELIVERED','DELIVERED','DELIVERED','DELIVERED','DELIVERED','DELIVERED',
                       'DELIVERED','FAILED','PENDING','CANCELLED'])[1 + (g %% 10)],
                (ARRAY['INVENTORY_FULFILLED','INVENTORY_FULFILLED','INVENTORY_FULFILLED',
                       'VENDOR_VOUCHER_FETCHED','INVENTORY_FULFILLED','INVENTORY_FULFILLED',
                       'INVENTORY_FULFILLED','VENDOR_ORDER_FAILED','PENDING_REPROCESS',
                       'NOT_REFUNDED'])[1 + (g %% 10)],
                '', 'Bench Customer', 'customer' || g || '@example.com', '+1555' || lpad(g::text, 7, '0'), '',
                now() - (g || ' seconds')::interval * 90, now(),
                now() - (g || ' seconds')::interval * 90 + interval '12 seconds',
                0, '', 'NONE', 0
            FROM generate_series(1, %(n)s) AS g
            """,
            {
                "c0": clients[0].pk,
                "p0": products[0].pk,
                "n": orders - have,
                "offset": have,
            },
        )
        cursor.execute("ANALYZE orders_order")
    print(f"inserted {orders - have} orders in {time.perf_counter() - started:.1f} s")


def median_ms(client, url: str, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--depth", type=int, default=1000, help="pages deep")
    args = parser.parse_args()

    ensure_database()
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "starship.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from orders.dashboard.views import PAGE_SIZE
    from orders.models import Order
    from orders.selectors import Cursor

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    fill(args.orders)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)

    # The cursor of page `depth` (found once with OFFSET; the measured request uses the keyset).
    row = Order.objects.order_by("-placed_at", "-id").values_list("placed_at", "id")[
        PAGE_SIZE * args.depth - 1
    ]
    deep = Cursor(row[0], row[1], "next").encode()
    urls = {
        "first page": "/dashboard/orders/",
        f"page {args.depth + 1} (cursor)": f"/dashboard/orders/?cursor={deep}",
        "first page, status=FAILED": "/dashboard/orders/?status=FAILED",
        "search by e-mail": "/dashboard/orders/?q=customer123456@example.com",
        "htmx partial, first page": "/dashboard/orders/",
    }
    client.get(urls["first page"])  # warm up connections and templates
    print(f"{Order.objects.count()} orders in {DB}; median of {args.runs} runs:")
    for label, url in urls.items():
        if label.startswith("htmx"):
            client.defaults["HTTP_HX_REQUEST"] = "true"
        queries: list[str] = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            client.get(url)
        ms = median_ms(client, url, args.runs)
        client.defaults.pop("HTTP_HX_REQUEST", None)
        print(f"  {label:<32} {ms:8.1f} ms   ({len(queries)} queries)")


if __name__ == "__main__":
    main()
