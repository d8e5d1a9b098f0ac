"""Benchmark: one bulk order (10,000 units) from POST to DELIVERED, then its detail read.

`bulk_order` places one order of `units` units of the bulk product that
bench/generate.py makes (bulk limit 10,000, 10,000 vouchers in stock) through
the running gunicorn, as one API client with its own wallet and token, and
times from the POST until the order is DELIVERED (database polled every
100 ms). It then reads `GET /api/v1/orders/{id}` `reads` times, the whole
body consumed each time, and reports the median. The worker must be running
(the caller starts `servers.worker`).

Setup is in this process, through the ORM and the services, and idempotent:
the client "Bulk client 1" (topped up for the order), stock imported with the
import service when short (each run delivers `units` vouchers). Django must be
set up in this process against the server's database.

    .venv/bin/python bench/bulk_order.py --database-url postgres://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import http.client
import json
import secrets
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.common import BULK_PRODUCT_NAME, rounded  # noqa: E402
from bench.order_load import DENOMINATION, _load_clients, _stock_up, _unit_price  # noqa: E402

CLIENT_PREFIX = "Bulk client"
POLL_SECONDS = 0.1
REQUEST_TIMEOUT_S = 300.0


def _request(
    base_url: str, method: str, path: str, *, token: str, body: dict | None = None
) -> tuple[int, bytes, float]:
    """One request on a new connection: status, body and seconds to the last byte."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(
        parts.hostname or servers.HOST, parts.port or 80, timeout=REQUEST_TIMEOUT_S
    )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, data, time.perf_counter() - started


def _error(data: bytes) -> str:
    """The error code of an API error body; never a value from the request."""
    try:
        return str(json.loads(data).get("error", "?"))
    except ValueError:
        return "not JSON"


def bulk_order(
    base_url: str, *, units: int = 10_000, reads: int = 3, timeout: float = 600.0
) -> dict[str, object]:
    """Place one `units`-unit order, wait until it is DELIVERED, read it `reads` times.

    Returns units, order_id, post_seconds (the POST's answer), delivered_seconds
    (POST sent until the poll saw DELIVERED), delivered_seconds_db (POST sent
    until the order's delivered_at), status and sub_status at the end, timed_out,
    read_seconds (median of the reads), read_seconds_all, read_bytes, vouchers
    (in the body), constant_seconds and constant_bytes (median of as many reads
    of /bench/constant-bulk.json, the floor), vouchers_imported (stock added
    by setup).
    """
    from orders.enums import OrderStatus
    from orders.models import Order, Product
    from orders.rules import OPEN_STATUSES, status_values

    product = Product.objects.filter(name=BULK_PRODUCT_NAME).first()
    if product is None:
        raise SystemExit(f"No product {BULK_PRODUCT_NAME!r}: run make bench-data.")
    if product.bulk_limit < units:
        raise SystemExit(f"{BULK_PRODUCT_NAME!r} has bulk limit {product.bulk_limit} < {units}.")
    price = _unit_price(_load_clients(1, funds=Decimal(0), prefix=CLIENT_PREFIX)[0], product.pk)
    (client_id,) = _load_clients(1, funds=price * units, prefix=CLIENT_PREFIX)
    imported = _stock_up(product.pk, units)
    token = servers.api_token(base_url, client_id=client_id)
    reference = f"bulk-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"

    started, started_wall = time.perf_counter(), time.time()
    status, data, post_seconds = _request(
        base_url,
        "POST",
        "/api/v1/orders",
        token=token,
        body={
            "product_id": product.pk,
            "denomination": DENOMINATION,
            "quantity": units,
            "reference_code": reference,
            "payment_method": "wallet",
            "customer": {"name": "Bulk Test", "email": "bulk@example.com"},
        },
    )
    if status not in (200, 201):
        raise RuntimeError(f"POST /api/v1/orders answered {status} ({_error(data)})")
    order_id = int(json.loads(data)["id"])
    open_statuses = set(status_values(OPEN_STATUSES))
    deadline = started + timeout
    timed_out = True
    while time.perf_counter() < deadline:
        current = Order.objects.filter(pk=order_id).values_list("status", flat=True).get()
        if current not in open_statuses:
            timed_out = False
            break
        time.sleep(POLL_SECONDS)
    delivered_seconds = time.perf_counter() - started
    order = Order.objects.values("status", "sub_status", "delivered_at").get(pk=order_id)
    delivered_db = (
        order["delivered_at"].timestamp() - started_wall
        if order["delivered_at"] and order["status"] == OrderStatus.DELIVERED
        else None
    )

    read_seconds: list[float] = []
    read_bytes = vouchers = 0
    for _ in range(reads if not timed_out else 0):
        status, data, seconds = _request(base_url, "GET", f"/api/v1/orders/{order_id}", token=token)
        if status != 200:
            raise RuntimeError(f"GET /api/v1/orders/{{id}} answered {status} ({_error(data)})")
        read_seconds.append(seconds)
        read_bytes = len(data)
        vouchers = len(json.loads(data).get("vouchers") or [])
    # The floor: a constant view of the same shape and as many vouchers, same gunicorn.
    constant_seconds = []
    for _ in range(reads):
        status, data, seconds = _request(
            base_url, "GET", f"/bench/constant-bulk.json?units={units}", token=token
        )
        if status != 200:
            raise RuntimeError(f"GET /bench/constant-bulk.json answered {status}")
        constant_seconds.append(seconds)
    return {
        "units": units,
        "order_id": order_id,
        "post_seconds": round(post_seconds, 3),
        "delivered_seconds": round(delivered_seconds, 3),
        "delivered_seconds_db": rounded(delivered_db, 3),
        "status": order["status"],
        "sub_status": order["sub_status"],
        "timed_out": timed_out,
        "read_seconds": rounded(statistics.median(read_seconds), 3) if read_seconds else None,
        "read_seconds_all": [round(s, 3) for s in read_seconds],
        "read_bytes": read_bytes,
        "vouchers": vouchers,
        "constant_seconds": rounded(statistics.median(constant_seconds), 3),
        "constant_bytes": len(data),
        "vouchers_imported": imported,
    }


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--redis-url", default=None, help='"" = local-memory cache')
    args = parser.parse_args()

    servers.stop_on_sigterm()
    servers.django_setup(args.database_url)
    with (
        servers.gunicorn(
            args.database_url, port=args.port, workers=args.workers, redis_url=args.redis_url
        ) as server,
        servers.worker(
            args.database_url, processes=args.worker_processes, redis_url=args.redis_url
        ),
    ):
        print(json.dumps(bulk_order(server.base_url, units=args.units)))
        print(f"gunicorn worker peak RSS {server.worker_peak_rss_mb()} MB")


if __name__ == "__main__":
    _main()
