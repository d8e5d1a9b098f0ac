"""Every benchmark, one run, one table: median, p95 and the ratio to a baseline
measured in the same run against the same data.

    make bench-data ORDERS=100000   # once: bench/generate.py
    make bench                      # this script; BENCH_ARGS="--runs 50" to change it
    .venv/bin/python bench/run.py [--runs 30] [--only dashboard,api,...] [--quick]

Runs against BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench)
filled by bench/generate.py. Prints the table and writes it as JSON to
bench/results/latest.json (git-ignored) so two runs can be compared. These are
benchmarks, not tests: a goal that is missed is printed, and the run goes on.

Groups (`--only`): dashboard (in-process through Django's test client, with
the bare SQL the page runs as its baseline), api (gunicorn with 2 workers and
a load generator in a separate process), orders (POST to DELIVERED with the
worker running, against pgbench on the same server), import (voucher CSV),
export (1,000,000-row CSV, peak RSS in a fresh process).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, database_url, percentile, server_url, setup_django

RESULTS = ROOT / "bench" / "results"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER_PROCESSES = os.cpu_count() or 1
GROUPS = ("dashboard", "api", "orders", "import", "export")


@dataclass
class Row:
    """One line of the table."""

    name: str
    unit: str  # "ms", "req/s", "orders/s", "rows/s", "MB"
    median: float
    p95: float | None = None
    samples: int = 1
    baseline: str = ""
    baseline_median: float | None = None
    ratio: float | None = None  # see `ratio_label`
    ratio_label: str = ""
    goal: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def summarise(samples: list[float]) -> tuple[float, float]:
    """Median and p95 of a non-empty series."""
    p95 = percentile(samples, 0.95)
    assert p95 is not None, "no samples"
    return statistics.median(samples), p95


def timed(fn: Callable[[], object], *, runs: int, warmup: int = 3) -> list[float]:
    """Milliseconds per call, `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    gc.collect()  # start each series with the same heap, not with the last one's garbage
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


class Bench:
    def __init__(self, *, runs: int, quick: bool) -> None:
        self.runs = runs
        self.quick = quick
        self.rows: list[Row] = []

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    def within(self, name: str, samples: list[float], *, limit_ms: float) -> Row:
        """A row for timings whose goal is a median under `limit_ms`."""
        median, p95 = summarise(samples)
        return self.add(
            Row(
                name,
                "ms",
                median,
                p95,
                len(samples),
                goal=f"≤ {limit_ms:g} ms",
                met=median <= limit_ms,
            )
        )

    # --- Dashboard, in process ---------------------------------------------------

    def dashboard(self) -> None:
        from django.conf import settings
        from django.contrib import admin
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from orders.dashboard.support import PAGE_SIZE
        from orders.models import Order
        from orders.selectors.paging import Cursor

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        user, _ = get_user_model().objects.get_or_create(
            username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
        )
        browser = Client()
        browser.force_login(user)
        total = Order.objects.count()
        raw = connection.cursor  # Django's wrapper; its .connection is psycopg's

        def get(url: str, *, headers: dict | None = None) -> Callable[[], object]:
            def call() -> object:
                response = browser.get(url, headers=headers or {})
                if response.status_code != 200:
                    raise SystemExit(f"GET {url} answered {response.status_code}")
                return response

            return call

        def bare_sql(call: Callable[[], object]) -> tuple[Callable[[], object], int]:
            """The statements one request runs, replayed on the same psycopg connection."""
            call()  # a session's first request also refreshes its idle timeout: not this one
            with CaptureQueriesContext(connection) as captured:
                call()
            statements = []
            for query in captured.captured_queries:
                sql = query["sql"]
                # iterator() runs its SELECT as a named server-side cursor; replay the SELECT.
                if sql.startswith("DECLARE "):
                    sql = sql.split(" CURSOR WITH HOLD FOR ", 1)[-1].split(" CURSOR FOR ", 1)[-1]
                statements.append(sql)
            pg = connection.connection

            def replay() -> None:
                with pg.cursor() as cursor:
                    for sql in statements:
                        cursor.execute(sql.encode())
                        if cursor.description is not None:
                            cursor.fetchall()

            return replay, len(statements)

        def page_vs_sql(name: str, url: str, goal_ratio: float, goal_ms: float | None) -> Row:
            call = get(url)
            replay, queries = bare_sql(call)
            page = timed(call, runs=self.runs)
            sql = timed(replay, runs=self.runs)
            median, p95 = summarise(page)
            sql_median, _ = summarise(sql)
            ratio = median / sql_median
            met = ratio <= goal_ratio and (goal_ms is None or median <= goal_ms)
            goal = f"≤ {goal_ratio:g}× SQL" + (f", ≤ {goal_ms:g} ms" if goal_ms else "")
            return self.add(
                Row(
                    name,
                    "ms",
                    median,
                    p95,
                    len(page),
                    baseline=f"bare SQL ({queries} queries)",
                    baseline_median=sql_median,
                    ratio=ratio,
                    ratio_label="× SQL",
                    goal=goal,
                    met=met,
                )
            )

        raw()  # open the connection
        first = page_vs_sql(
            "dashboard order list, page 1", "/dashboard/orders/", 3, 20 if total >= 10**6 else None
        )
        for depth in (1_000, 10_000):
            offset = depth * PAGE_SIZE - 1
            if offset >= total:
                print(f"  (skipped page {depth:,}: only {total:,} orders)")
                continue
            last = Order.objects.order_by("-placed_at", "-id").values_list("placed_at", "id")[
                offset
            ]
            cursor = Cursor(last[0], last[1], "next").encode()
            url = f"/dashboard/orders/?cursor={cursor}"
            samples = timed(get(url), runs=self.runs)
            median, p95 = summarise(samples)
            deep = self.add(
                Row(
                    f"same, {depth:,} pages deep",
                    "ms",
                    median,
                    p95,
                    len(samples),
                    baseline="page 1",
                    baseline_median=first.median,
                    ratio=median / first.median,
                    ratio_label="× page 1",
                    goal="≤ 1.5× page 1",
                    met=median / first.median <= 1.5,
                )
            )
            # The stock admin changelist on the same rows: OFFSET paging plus a COUNT.
            model_admin = admin.site._registry[Order]
            model_admin.list_per_page = PAGE_SIZE
            admin_runs = max(5, self.runs // 5)
            samples = timed(get(f"/admin/orders/order/?p={depth + 1}"), runs=admin_runs, warmup=1)
            admin_median, admin_p95 = summarise(samples)
            self.add(
                Row(
                    f"Django admin changelist, page {depth + 1:,}",
                    "ms",
                    admin_median,
                    admin_p95,
                    len(samples),
                    baseline=f"dashboard {depth:,} pages deep",
                    baseline_median=deep.median,
                    ratio=admin_median / deep.median,
                    ratio_label="× slower than dashboard",
                    goal="dashboard ≥ 10× faster",
                    met=admin_median / deep.median >= 10,
                )
            )

        sample = (
            # An order of the generated data set (bench/generate.py), not one that the
            # order load test placed: those all share one customer e-mail.
            Order.objects.filter(status="DELIVERED", reference_code__startswith="bench-0")
            .exclude(customer_email="")
            .order_by("-placed_at")
            .values("reference_code", "customer_email", "client_id")
            .first()
        )
        if sample is None:
            raise SystemExit("No delivered order in the benchmark database: run make bench-data.")
        today = datetime.now(UTC).date()
        page_vs_sql("list filtered by status FAILED", "/dashboard/orders/?status=FAILED", 3, None)
        page_vs_sql(
            "list by client + 30-day range",
            f"/dashboard/orders/?client={sample['client_id']}"
            f"&placed_from={today - timedelta(days=60)}&placed_to={today - timedelta(days=30)}",
            3,
            None,
        )
        page_vs_sql(
            "search by reference_code", f"/dashboard/orders/?q={sample['reference_code']}", 3, None
        )
        page_vs_sql(
            "search by customer e-mail", f"/dashboard/orders/?q={sample['customer_email']}", 3, None
        )

        # Each reveal adds an event to its order's audit trail, which the detail page
        # shows: reveals go to a second order so the detail timed stays the same.
        order, _ = ten_voucher_order("bench-order-detail")
        _, vouchers = ten_voucher_order("bench-order-revealed")
        self.within(
            "order detail, 10 vouchers (masked)",
            timed(get(f"/dashboard/orders/{order.pk}/"), runs=self.runs),
            limit_ms=20,
        )
        settings.REVEAL_RATE_PER_HOUR = 10**9  # the per-agent hourly cap would stop the loop
        position = iter(range(10**9))

        def reveal() -> object:
            voucher = vouchers[next(position) % len(vouchers)]
            response = browser.post(
                f"/dashboard/vouchers/{voucher}/reveal/",
                {"reason": "not_received", "note": "benchmark"},
                headers={"HX-Request": "true"},
            )
            if response.status_code != 200:
                raise SystemExit(f"reveal answered {response.status_code}")
            return response

        self.within("reveal POST (decrypt + audit)", timed(reveal, runs=self.runs), limit_ms=20)

    # --- API through gunicorn ----------------------------------------------------

    def api(self, url: str) -> None:
        from bench import servers
        from bench.loadgen import run_load
        from orders.models import Order

        # A delivered gift card: its detail decrypts a voucher and audits the read.
        order = (
            Order.objects.filter(
                status="DELIVERED",
                quantity=1,
                items__voucher__isnull=False,
                reference_code__startswith="bench-0",
            )
            .order_by("-id")
            .first()
        )
        if order is None:
            raise SystemExit("No delivered order in the benchmark database: run make bench-data.")
        duration = 5 if self.quick else 15
        # Redis as in production with several workers: the rate limiter and the
        # credential cache are shared through it.
        with servers.gunicorn(url, workers=2, redis_url=REDIS_URL) as server:
            token = servers.api_token(server.base_url, client_id=order.client_id)
            headers = {"Authorization": f"Bearer {token}"}
            constant = run_load(
                f"{server.base_url}/bench/constant.json",
                headers=headers,
                concurrency=8,
                duration=duration,
            )
            detail = run_load(
                f"{server.base_url}/api/v1/orders/{order.pk}",
                headers=headers,
                concurrency=8,
                duration=duration,
            )
            self.server_rss = server.worker_peak_rss_mb()
            ratio = detail["rps"] / constant["rps"]
            self.add(
                Row(
                    "GET /api/v1/orders/{id}, gunicorn 2 workers, 8 connections",
                    "req/s",
                    detail["rps"],
                    None,
                    detail["requests"],
                    baseline=f"constant JSON view ({constant['rps']:,.0f} req/s)",
                    baseline_median=constant["rps"],
                    ratio=ratio,
                    ratio_label="of baseline",
                    goal="≥ 0.5 of baseline",
                    met=ratio >= 0.5,
                    note=f"latency p50 {detail['p50_ms']:.1f} ms, p95 {detail['p95_ms']:.1f} ms; "
                    f"errors {detail['errors']}",
                    extra={"detail": detail, "constant": constant},
                )
            )
            if not self.skip_orders:
                self.orders(url, server)
            peak = max(server.worker_peak_rss_mb())
        self.add(
            Row(
                "gunicorn worker peak RSS after the run",
                "MB",
                peak,
                goal="≤ 150 MB",
                met=peak <= 150,
            )
        )

    # --- Orders end to end -------------------------------------------------------

    skip_orders = False

    def orders(self, url: str, server) -> None:
        from bench import servers
        from bench.order_load import order_throughput
        from bench.pgbench import pgbench_tps

        per_client = 25 if self.quick else 100
        # One worker process per core.
        with servers.worker(url, processes=WORKER_PROCESSES, redis_url=REDIS_URL):
            result = order_throughput(url, server.base_url, clients=8, orders_per_client=per_client)
        pg = pgbench_tps(server_url(url), clients=8, seconds=10 if self.quick else 20)
        rate = result["orders_per_s"]
        self.add(
            Row(
                f"POST /api/v1/orders → DELIVERED, 8 clients, {WORKER_PROCESSES} worker processes",
                "orders/s",
                rate,
                None,
                result["orders"],
                baseline=f"pgbench TPC-B-like, 8 clients ({pg['tps']:,.0f} tps)",
                baseline_median=pg["tps"],
                ratio=rate / pg["tps"],
                ratio_label="of pgbench tps",
                goal="≥ 200 orders/s",
                met=rate >= 200,
                note=f"POST p50 {result['post_p50_ms']:.0f} ms, p95 {result['post_p95_ms']:.0f} ms; "
                f"placed→delivered p50 {result['placed_to_delivered_p50_ms']:.0f} ms; "
                f"errors {result['errors']}",
                extra={"orders": result, "pgbench": pg},
            )
        )

    # --- Subprocess benchmarks ---------------------------------------------------

    def voucher_import(self) -> None:
        rows = 20_000 if self.quick else 100_000
        result = json_subprocess("bench/import_vouchers.py", "--rows", str(rows), "--json")
        rate = result["rows_per_s"]
        self.add(
            Row(
                f"voucher CSV import, {rows:,} rows (validate + commit)",
                "rows/s",
                rate,
                None,
                rows,
                goal="≥ 5,000 rows/s",
                met=rate >= 5000,
                note=f"validate {result['validate_rows_per_s']:,.0f} rows/s, commit "
                f"{result['commit_rows_per_s']:,.0f} rows/s; peak RSS {result['peak_rss_mb']:.0f} MB",
                extra=result,
            )
        )

    def export(self, url: str) -> None:
        result = json_subprocess("bench/export_orders.py", "--database-url", url, "--json")
        peak = result["peak_rss_mb"]
        self.add(
            Row(
                f"CSV export of {result['rows']:,} orders, peak RSS",
                "MB",
                peak,
                None,
                1,
                goal="≤ 150 MB",
                met=peak <= 150,
                note=f"{result['rows_per_s']:,.0f} rows/s, {result['seconds']:.0f} s; process "
                f"RSS before the request {result['rss_before_mb']:.0f} MB",
                extra=result,
            )
        )


def json_subprocess(script: str, *args: str) -> dict:
    """Run a benchmark script in a fresh interpreter; its last stdout line is JSON."""
    completed = subprocess.run(
        [sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{script} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def ten_voucher_order(reference: str) -> tuple[object, list[int]]:
    """A delivered order of 10 units with 10 encrypted vouchers (made once)."""
    from django.db import transaction

    from orders.crypto import fingerprint
    from orders.models import Order, OrderItem, Voucher

    order = Order.objects.filter(reference_code=reference).first()
    if order is None:
        template = (
            Order.objects.filter(
                status="DELIVERED", quantity=1, product__delivery_type="CODE_WITH_PIN"
            )
            .exclude(product_kind="MOBILE_TOPUP")
            .order_by("-id")
            .first()
        )
        if template is None:
            raise SystemExit("No delivered gift-card order to copy: run make bench-data.")
        with transaction.atomic():
            template_item = template.items.select_related("voucher").get()
            order = template
            order.pk = None
            order.transaction = None
            order.refund_entry = None
            order.reference_code = reference
            order.quantity = 10
            order.save()
            for position in range(1, 11):
                number = f"9{order.pk:09d}{position:06d}"
                voucher = Voucher.objects.create(
                    product_id=order.product_id,
                    denomination=order.denomination,
                    card_number=number,
                    pin_code=f"{position:06d}",
                    card_last4=number[-4:],
                    fingerprint=fingerprint(number),
                    status="DELIVERED",
                    source="VENDOR",
                    vendor_id=template_item.voucher.vendor_id if template_item.voucher else None,
                    delivered_at=order.delivered_at,
                )
                OrderItem.objects.create(
                    order=order,
                    position=position,
                    status="DELIVERED",
                    voucher=voucher,
                    delivered_at=order.delivered_at,
                )
    vouchers = list(
        Voucher.objects.filter(order_item__order=order).order_by("id").values_list("id", flat=True)
    )
    return order, vouchers


def format_row(row: Row) -> str:
    value = f"{row.median:,.1f} {row.unit}"
    p95 = f"{row.p95:,.1f}" if row.p95 is not None else "–"
    ratio = f"{row.ratio:,.2f} {row.ratio_label}" if row.ratio is not None else "–"
    met = {True: "met", False: "MISSED", None: ""}[row.met]
    return f"{row.name:<58} {value:>16} {p95:>10} {ratio:>30}  {row.goal:<26} {met}"


def header() -> str:
    return (
        f"{'measurement':<58} {'median':>16} {'p95':>10} {'ratio to baseline':>30}  "
        f"{'goal':<26} status"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per in-process page")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups")
    parser.add_argument("--quick", action="store_true", help="shorter load runs, smaller import")
    args = parser.parse_args()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s): {', '.join(sorted(unknown))}; use {', '.join(GROUPS)}")

    url = database_url()
    # Static files are served by whitenoise from STATIC_ROOT, which a benchmark
    # never collects; its warning says nothing about what is measured.
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(url, settings_module="bench.settings")
    from django.db import connection

    from orders.models import Order

    orders = Order.objects.count()
    if not orders:
        raise SystemExit(f"{url} holds no orders: run `make bench-data` first.")
    started = time.perf_counter()
    print(
        f"Benchmark against {connection.settings_dict['NAME']}: {orders:,} orders; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {connection.cursor().connection.info.server_version}\n"
    )
    print(header())
    bench = Bench(runs=args.runs, quick=args.quick)
    if "dashboard" in groups:
        bench.dashboard()
    if "api" in groups or "orders" in groups:
        bench.skip_orders = "orders" not in groups
        bench.api(url)
    if "import" in groups:
        bench.voucher_import()
    if "export" in groups:
        bench.export(url)

    RESULTS.mkdir(exist_ok=True)
    document = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "orders": orders,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [asdict(row) for row in bench.rows],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2, default=str))
    missed = [row.name for row in bench.rows if row.met is False]
    print(
        f"\n{len(bench.rows)} measurements in {document['seconds']:.0f} s; "
        f"{len(bench.rows) - len(missed)} goals met or without a goal, {len(missed)} missed. "
        f"Written to {(RESULTS / 'latest.json').relative_to(ROOT)}."
    )


if __name__ == "__main__":
    main()
