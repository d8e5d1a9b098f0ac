"""Benchmark: peak memory and speed of the streamed orders CSV export over 1,000,000 orders.

Not a test. Creates (once) its own PostgreSQL database `bench_export`, fills it
with orders by one SQL INSERT ... SELECT FROM generate_series, then, in a fresh
subprocess (so its RSS is not polluted by the fill), signs a superuser in with
django.test.Client, GETs /dashboard/finance/export/orders.csv and consumes the
streamed body, counting bytes and rows. Prints rows, MB, seconds, rows/s, the
subprocess's RSS before the request and its peak RSS (ru_maxrss). Goal: peak
RSS <= 150 MB, and rows/s near what PostgreSQL alone streams for the same
query (a psql COPY of the join to /dev/null).

    .venv/bin/python bench/export_orders.py [--orders 1000000] [--path /dashboard/...]

With --database-url (bench/run.py passes the data set of bench/generate.py) it
exports that database's orders as they are and fills nothing; --json ends the
output with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402

DB = "bench_export"
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
EXPORT_PATH = "/dashboard/finance/export/orders.csv"
GOAL_MB = 150.0
DATABASE_URL = f"{SERVER}/{DB}"


def setup_django() -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query in connection.queries
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "starship.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fill(orders: int) -> None:
    from django.db import connection

    from orders.models import Client, Order, Product, Vendor, Wallet

    have = Order.objects.count()
    if have >= orders:
        print(f"{have} orders already in {DB}; not inserting")
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
    wallets = [Wallet.objects.get_or_create(client=c, currency="USD")[0] for c in clients]
    # The arithmetic below needs consecutive ids (true for a fresh database).
    assert [c.pk for c in clients] == list(range(clients[0].pk, clients[0].pk + 50))
    assert [p.pk for p in products] == list(range(products[0].pk, products[0].pk + 20))
    assert [w.pk for w in wallets] == list(range(wallets[0].pk, wallets[0].pk + 50))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO orders_order (
                client_id, product_id, wallet_id, reference_code, request_hash, product_name,
                product_brand, product_kind, delivery_type, currency, denomination, quantity,
                face_value, discount, fees, taxes, amount, wallet_currency, exchange_rate,
                wallet_amount, payment_method, status, sub_status, failure_reason,
                customer_name, customer_email, customer_phone, recipient_phone, placed_at,
                updated_at, delivered_at, attempts, vendor_order_ref, refund_status,
                refund_amount
            )
            SELECT
                %(c0)s + (g %% 50), %(p0)s + (g %% 20), %(w0)s + (g %% 50),
                'BENCH-' || (g + %(offset)s), '', 'Bench Card ' || (g %% 20), 'Bench',
                'GIFT_CARD', 'CODE_WITH_PIN', 'USD', 25, 1, 25, 0, 0, 0, 25, 'USD', 1, 25,
                'WALLET',
                (ARRAY['DELIVERED','DELIVERED','DELIVERED','DELIVERED','DELIVERED','DELIVERED',
                       'DELIVERED','FAILED','PENDING','CANCELLED'])[1 + (g %% 10)],
                (ARRAY['INVENTORY_FULFILLED','INVENTORY_FULFILLED','INVENTORY_FULFILLED',
                       'VENDOR_VOUCHER_FETCHED','INVENTORY_FULFILLED','INVENTORY_FULFILLED',
                       'INVENTORY_FULFILLED','VENDOR_ORDER_FAILED','PENDING_REPROCESS',
                       'NOT_REFUNDED'])[1 + (g %% 10)],
                '', 'Bench Customer', 'customer' || (g + %(offset)s) || '@example.com',
                '+1555' || lpad((g + %(offset)s)::text, 7, '0'), '',
                now() - ((g + %(offset)s) || ' seconds')::interval * 90, now(),
                now() - ((g + %(offset)s) || ' seconds')::interval * 90 + interval '12 seconds',
                0, '', 'NONE', 0
            FROM generate_series(1, %(n)s) AS g
            """,
            {
                "c0": clients[0].pk,
                "p0": products[0].pk,
                "w0": wallets[0].pk,
                "n": orders - have,
                "offset": have,
            },
        )
        cursor.execute("ANALYZE orders_order")
    print(f"inserted {orders - have} orders in {time.perf_counter() - started:.1f} s")


def prepare(orders: int, *, fill_orders: bool) -> None:
    """Database, schema, data and the bench superuser (in this, the parent, process)."""
    if fill_orders:
        ensure_database(DATABASE_URL)
    setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    if fill_orders:
        call_command("migrate", verbosity=0)
        fill(orders)
    get_user_model().objects.update_or_create(
        username="bench-admin", defaults={"is_superuser": True, "is_staff": True, "is_active": True}
    )


def measure(path: str) -> None:
    """Run in the child: one export request, body consumed; print a JSON line."""
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from orders.models import Order

    user = get_user_model().objects.get(username="bench-admin")
    client = Client()
    client.force_login(user)
    total = Order.objects.count()
    connection.close()  # the request opens its own, like a fresh worker would
    baseline_now = current_rss_mb()
    baseline_peak = rss_mb()

    started = time.perf_counter()
    response = client.get(path)
    first_byte = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    assert response.streaming, "the export is expected to stream"
    size = 0
    newlines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        newlines += chunk.count(b"\n")
    response.close()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "orders_in_db": total,
                "rows": newlines - 1,  # minus the header; no field holds a newline here
                "bytes": size,
                "seconds": seconds,
                "first_byte": first_byte,
                "baseline_rss": baseline_now,
                "baseline_peak": baseline_peak,
                "peak_rss": rss_mb(),
                "end_rss": current_rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--path", default=EXPORT_PATH, help="export URL, with any query string")
    parser.add_argument(
        "--database-url", default="", help="export this database's orders as they are"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DATABASE_URL, DB
    if args.database_url:
        DATABASE_URL = args.database_url
        DB = DATABASE_URL.rsplit("/", 1)[-1]

    if args.child:
        measure(args.path)
        return

    prepare(args.orders, fill_orders=not args.database_url)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--path", args.path]
        + (["--database-url", args.database_url] if args.database_url else []),
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    mb = r["bytes"] / 2**20
    growth = r["peak_rss"] - r["baseline_rss"]
    verdict = "OK" if r["peak_rss"] <= GOAL_MB else "OVER GOAL"
    print(f"export {args.path} over {r['orders_in_db']} orders in {DB}:")
    table = [
        ("rows", f"{r['rows']:,}"),
        ("written", f"{mb:,.1f} MB"),
        ("time", f"{r['seconds']:.1f} s (first byte {r['first_byte'] * 1000:.0f} ms)"),
        ("rate", f"{r['rows'] / r['seconds']:,.0f} rows/s"),
        (
            "baseline RSS",
            f"{r['baseline_rss']:.1f} MB (peak before request {r['baseline_peak']:.1f} MB)",
        ),
        (
            "peak RSS",
            f"{r['peak_rss']:.1f} MB  (+{growth:.1f} MB; goal <= {GOAL_MB:.0f} MB: {verdict})",
        ),
        ("RSS at end", f"{r['end_rss']:.1f} MB"),
    ]
    for label, value in table:
        print(f"  {label:<13} {value}")
    if args.json:
        figures = {
            "rows": r["rows"],
            "seconds": r["seconds"],
            "rows_per_s": r["rows"] / r["seconds"],
            "first_byte_ms": r["first_byte"] * 1000,
            "rss_before_mb": r["baseline_rss"],
            "peak_rss_mb": r["peak_rss"],
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
