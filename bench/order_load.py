"""Benchmark: POST /api/v1/orders end to end to DELIVERED, from inventory.

`order_throughput` places `clients` x `orders_per_client` one-unit orders
through the running gunicorn, `clients` API clients at once (one thread
each, each its own client, wallet and token), and times from the first POST
until every one of those orders is DELIVERED, polling the database every
50 ms. The worker must be running: the caller starts `servers.worker` (or
passes start_worker=True to have it started here and stopped afterwards).

Setup is in this process, through the ORM and the services, and idempotent:
clients named "Load client 1..N" (created with client_create, topped up with
wallet_top_up when short), a product "Load gift card 10 USD" of vendor
"bench-load", and AVAILABLE stock for it imported with
voucher_import_validate / voucher_import_commit when short. Every run issues
new credentials and uses new reference codes, so runs can repeat on the same
database. Django must be set up in this process against `database_url`.

    .venv/bin/python bench/order_load.py --database-url postgres://postgres@127.0.0.1:5432/h_load
"""

from __future__ import annotations

import http.client
import json
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.common import percentile, rounded  # noqa: E402

if TYPE_CHECKING:
    from orders.models import Product

CLIENT_PREFIX = "Load client"
PRODUCT_NAME = "Load gift card 10 USD"
VENDOR_CODE = "bench-load"
CURRENCY = "USD"
DENOMINATION = "10.00"
POLL_SECONDS = 0.05
POST_TIMEOUT_S = 30.0


@dataclass
class _Posted:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    order_ids: list[int] = field(default_factory=list)


# --- setup (in this process, through the services) ---------------------------


def _check_same_database(database_url: str) -> None:
    import dj_database_url
    from django.db import connection

    wanted = dj_database_url.parse(database_url)
    have = connection.settings_dict

    def where(settings: Mapping[str, Any]) -> tuple[str, str, str]:
        return (settings["NAME"], settings.get("HOST") or "", str(settings.get("PORT") or ""))

    if where(wanted) != where(have):
        raise RuntimeError("Django in this process is set up against another database")


def _load_product() -> Product:
    from orders.enums import DeliveryType, ProductKind
    from orders.models import Product, Vendor

    vendor, _ = Vendor.objects.get_or_create(
        code=VENDOR_CODE, defaults={"name": "Bench load vendor"}
    )
    product, _ = Product.objects.get_or_create(
        name=PRODUCT_NAME,
        defaults={
            "vendor": vendor,
            "brand": "Load",
            "kind": ProductKind.GIFT_CARD,
            "currency": CURRENCY,
            "denominations": [DENOMINATION],
            "delivery_type": DeliveryType.CODE_WITH_PIN,
            "description": "Benchmark product, filled from inventory only.",
        },
    )
    return product


def _available(product_id: int) -> int:
    from orders.models import Voucher
    from orders.rules import allocatable_q

    return Voucher.objects.filter(
        allocatable_q(), product_id=product_id, denomination=Decimal(DENOMINATION)
    ).count()


def _stock_up(product_id: int, units: int) -> int:
    """At least `units` AVAILABLE vouchers; imports the shortfall. Returns units imported."""
    from orders.services.actors import Actor
    from orders.services.imports import voucher_import_commit, voucher_import_validate

    missing = units - _available(product_id)
    if missing <= 0:
        return 0
    run = secrets.token_hex(6).upper()
    actor = Actor.system("bench")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        path = Path(tmp) / "load-vouchers.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(
                "card_number,pin_code,voucher_reference_number,claim_url,expires_at,denomination\n"
            )
            for i in range(missing):
                pin = secrets.randbelow(10**6)
                handle.write(f"LOAD{run}{i:08d},{pin:06d},LOAD-{run}-{i},,,{DENOMINATION}\n")
        with path.open(encoding="utf-8", newline="") as stream:
            preview = voucher_import_validate(
                product_id=product_id, stream=stream, file_name=path.name, actor=actor
            )
        if not preview.is_valid:
            # Row numbers and reasons only: the preview never carries a cell's value.
            raise RuntimeError(f"load vouchers did not validate: {preview.errors[:3]}")
        with path.open(encoding="utf-8", newline="") as stream:
            voucher_import_commit(batch_id=preview.batch_id, stream=stream, actor=actor)
    return missing


def _load_clients(count: int, *, funds: Decimal, prefix: str = CLIENT_PREFIX) -> list[int]:
    """Ids of clients "<prefix> 1..count", each with at least `funds` in its wallet."""
    from orders.models import Client, Wallet
    from orders.services.actors import Actor
    from orders.services.clients import client_create, wallet_open
    from orders.services.wallets import wallet_top_up

    actor = Actor.system("bench")
    ids = []
    for number in range(1, count + 1):
        name = f"{prefix} {number}"
        client = Client.objects.filter(name=name).first()
        if client is None:
            # Its first credential is not used: each run issues its own.
            client, _, _ = client_create(name=name, currency=CURRENCY, balance=funds, actor=actor)
        wallet = wallet_open(client=client, currency=CURRENCY)
        balance = Wallet.objects.get(pk=wallet.pk).balance
        if balance < funds:
            wallet_top_up(
                wallet_id=wallet.pk, amount=funds - balance, actor=actor, note="Bench load top-up"
            )
        ids.append(client.pk)
    return ids


def _unit_price(client_id: int, product_id: int) -> Decimal:
    from orders.models import Client
    from orders.services.pricing import charges_quote

    quote = charges_quote(
        client=Client.objects.get(pk=client_id),
        product_id=product_id,
        denomination=DENOMINATION,
        quantity=1,
        wallet_currency=CURRENCY,
    )
    return quote.wallet_amount


# --- the load ------------------------------------------------------------------


def _post_orders(
    *,
    base_url: str,
    token: str,
    product_id: int,
    reference_codes: list[str],
    start: threading.Barrier,
    posted: _Posted,
) -> None:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(
        parts.hostname or servers.HOST, parts.port or 80, timeout=POST_TIMEOUT_S
    )
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    try:
        start.wait()
        for reference_code in reference_codes:
            body = json.dumps(
                {
                    "product_id": product_id,
                    "denomination": DENOMINATION,
                    "quantity": 1,
                    "reference_code": reference_code,
                    "payment_method": "wallet",
                    "customer": {"name": "Load Test", "email": "load@example.com"},
                }
            )
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/orders", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                posted.statuses[type(exc).__name__] += 1
                conn.close()
                continue
            posted.latencies_ms.append((time.perf_counter() - started) * 1000)
            posted.statuses[str(response.status)] += 1
            if response.status in (200, 201):
                posted.order_ids.append(int(json.loads(payload)["id"]))
    finally:
        conn.close()


def _status_counts(order_ids: list[int]) -> Counter[str]:
    from django.db.models import Count

    from orders.models import Order

    rows = (
        Order.objects.filter(pk__in=order_ids).values("status").annotate(n=Count("id")).order_by()
    )
    return Counter({row["status"]: row["n"] for row in rows})


def order_throughput(
    database_url: str,
    base_url: str,
    *,
    clients: int = 8,
    orders_per_client: int = 50,
    timeout: float = 120.0,
    start_worker: bool = False,
) -> dict[str, object]:
    """Place clients x orders_per_client orders at once; time them to DELIVERED.

    Returns orders (created), delivered, seconds (first POST until none is
    PLACED or PENDING, by 50 ms polling, at most `timeout`), orders_per_s
    (delivered / seconds; if timed out, delivered / seconds_db), seconds_db
    (first POST until the last delivered_at), post_p50_ms / post_p95_ms (of
    the answered POSTs), post_errors and post_statuses (count per HTTP status
    or exception name), errors (post_errors + orders not DELIVERED),
    placed_to_delivered_p50_ms / _p95_ms (per order, from the database),
    not_delivered (count per status of the others: still PENDING when timed
    out, or FAILED...), delivered_sub_statuses (INVENTORY_FULFILLED unless
    the vendor had to help), timed_out, vouchers_imported (stock added by setup).
    """
    from orders.models import Order
    from orders.rules import OPEN_STATUSES, status_values

    _check_same_database(database_url)
    product = _load_product()
    price = _unit_price(_load_clients(1, funds=Decimal(0))[0], product.pk)
    client_ids = _load_clients(clients, funds=price * orders_per_client)
    imported = _stock_up(product.pk, clients * orders_per_client)
    tokens = [servers.api_token(base_url, client_id=client_id) for client_id in client_ids]

    run = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
    start = threading.Barrier(clients + 1)
    posted = [_Posted() for _ in range(clients)]
    threads = [
        threading.Thread(
            target=_post_orders,
            kwargs={
                "base_url": base_url,
                "token": tokens[number],
                "product_id": product.pk,
                "reference_codes": [
                    f"load-{run}-{number + 1}-{n + 1}" for n in range(orders_per_client)
                ],
                "start": start,
                "posted": posted[number],
            },
            daemon=True,
        )
        for number in range(clients)
    ]
    with ExitStack() as stack:
        if start_worker:
            stack.enter_context(servers.worker(database_url))
        for thread in threads:
            thread.start()
        start.wait(timeout=60)
        started, started_wall = time.perf_counter(), time.time()
        deadline = started + timeout
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        order_ids = [order_id for p in posted for order_id in p.order_ids]
        counts: Counter[str] = Counter()
        timed_out = True
        while time.perf_counter() < deadline:
            counts = _status_counts(order_ids)
            if not any(counts[status] for status in status_values(OPEN_STATUSES)):
                timed_out = False
                break
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started

    delivered_rows = list(
        Order.objects.filter(pk__in=order_ids, status="DELIVERED").values_list(
            "placed_at", "delivered_at", "sub_status"
        )
    )
    fulfil_ms = [
        (delivered_at - placed_at).total_seconds() * 1000
        for placed_at, delivered_at, _ in delivered_rows
        if delivered_at is not None
    ]
    last_delivered = max((d for _, d, _ in delivered_rows if d is not None), default=None)
    # INVENTORY_FULFILLED for all, unless stock ran out and the vendor filled some.
    delivered_sub_statuses = Counter(sub for _, _, sub in delivered_rows)
    seconds_db = last_delivered.timestamp() - started_wall if last_delivered else None
    latencies = [ms for p in posted for ms in p.latencies_ms]
    statuses: Counter[str] = Counter()
    for p in posted:
        statuses.update(p.statuses)
    post_errors = sum(n for status, n in statuses.items() if status not in ("200", "201"))
    delivered = len(delivered_rows)
    not_delivered = {s: n for s, n in counts.items() if s != "DELIVERED"}
    # Stuck orders (timed out) must not turn the rate into "delivered / timeout".
    rate_seconds = seconds if not timed_out else seconds_db
    return {
        "clients": clients,
        "orders": len(order_ids),
        "delivered": delivered,
        "seconds": round(seconds, 3),
        "orders_per_s": round(delivered / rate_seconds, 1) if rate_seconds else None,
        "seconds_db": round(seconds_db, 3) if seconds_db is not None else None,
        "post_p50_ms": rounded(percentile(latencies, 0.50)),
        "post_p95_ms": rounded(percentile(latencies, 0.95)),
        "post_errors": post_errors,
        "post_statuses": dict(statuses),
        "errors": post_errors + sum(not_delivered.values()),
        "placed_to_delivered_p50_ms": rounded(percentile(fulfil_ms, 0.50)),
        "placed_to_delivered_p95_ms": rounded(percentile(fulfil_ms, 0.95)),
        "not_delivered": not_delivered,
        "delivered_sub_statuses": dict(delivered_sub_statuses),
        "timed_out": timed_out,
        "vouchers_imported": imported,
    }


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/h_load")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--orders-per-client", type=int, default=50)
    parser.add_argument("--redis-url", default=None, help='"" = local-memory cache')
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--log-dir", default=None, help="keep the servers' logs here")
    args = parser.parse_args()

    servers.stop_on_sigterm()
    servers.django_setup(args.database_url)
    with (
        servers.gunicorn(
            args.database_url,
            port=args.port,
            workers=args.workers,
            redis_url=args.redis_url,
            log_dir=args.log_dir,
        ) as server,
        servers.worker(
            args.database_url,
            processes=args.worker_processes,
            redis_url=args.redis_url,
            log_dir=args.log_dir,
        ),
    ):
        result = order_throughput(
            args.database_url,
            server.base_url,
            clients=args.clients,
            orders_per_client=args.orders_per_client,
        )
        print(json.dumps(result))
        print(f"gunicorn worker peak RSS {server.worker_peak_rss_mb()} MB")


if __name__ == "__main__":
    _main()
