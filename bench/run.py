"""Every benchmark, one run, one table: median, p95 and the ratio to a baseline
measured in the same run against the same data.

    make bench-data ORDERS=100000   # once: bench/generate.py
    make bench                      # this script; BENCH_ARGS="--runs 50" to change it
    .venv/bin/python bench/run.py [--runs 30] [--only dashboard,api,...] [--quick]
        [--orders-label 5M]

Runs against BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench)
filled by bench/generate.py. Prints the table and writes it as JSON to
bench/results/latest.json (git-ignored) so two runs can be compared. These are
benchmarks, not tests: a goal that is missed is printed, and the run goes on.

Groups (`--only`): dashboard (in-process through Django's test client, with
the bare SQL the page runs as its baseline, and every dashboard page against
the order list), api (gunicorn with 2 and with 1 workers and a load generator
in a separate process, the audit seal lag sampled during the read), orders
(POST to DELIVERED with 2 and with 1 worker processes, against pgbench on the
same server), bulk (one 10,000-unit order to DELIVERED and its detail read),
import (voucher CSV), export (1,000,000-row CSV, peak RSS in a fresh process).

`--orders-label 5M` names the data set (a second database, e.g. 5,000,000
orders): the results go to bench/results/latest-5M.json instead of
latest.json, so `bench/table.py` can set both side by side.
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
# gunicorn (reads) and run_worker (orders) at these process counts: does it scale?
# Reads run 1 then 2 (the 2-worker server goes on to the orders and the bulk order).
SCALING = (1, 2)
GROUPS = ("dashboard", "api", "orders", "bulk", "import", "export")
# Where gunicorn listens; BENCH_PORT when another run already uses 8765.
PORT = int(os.environ.get("BENCH_PORT", "8765"))
# The goals of issue 13, as ratios to the baselines of the same run.
API_GOAL = 0.25  # of the constant view
ORDERS_GOAL = 0.06  # of pgbench TPC-B tps
PAGE_GOAL = 3.0  # × the order list page
BULK_DELIVERED_GOAL_S = 10.0
BULK_READ_GOAL_S = 2.0
# A page slower than this gets fewer timed runs: as many as fit in PAGE_BUDGET_MS, at least 3.
SLOW_PAGE_MS = 100.0
PAGE_BUDGET_MS = 5_000.0


@dataclass
class Row:
    """One line of the table."""

    name: str
    unit: str  # "ms", "s", "req/s", "orders/s", "rows/s", "MB", "events", "×"
    median: float | None  # None: not measurable on this schema ("n/a")
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


def interleaved(
    fn: Callable[[], object], baseline: Callable[[], object], *, runs: int
) -> tuple[list[float], list[float]]:
    """Milliseconds per call of `fn` and of `baseline`, called in turn `runs` times
    each, after one untimed call of each."""
    fn()
    baseline()
    gc.collect()
    samples: list[float] = []
    baseline_samples: list[float] = []
    for _ in range(runs):
        for call, into in ((fn, samples), (baseline, baseline_samples)):
            started = time.perf_counter()
            call()
            into.append((time.perf_counter() - started) * 1000)
    return samples, baseline_samples


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
    def __init__(self, *, runs: int, quick: bool, groups: list[str]) -> None:
        self.runs = runs
        self.quick = quick
        self.groups = groups
        self.rows: list[Row] = []
        # Filled by the api and orders groups for the bulk order's baselines.
        self.order_rate: float | None = None

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
        self.every_page(get, order_id=order.pk)

    def every_page(self, get: Callable[[str], Callable[[], object]], *, order_id: int) -> None:
        """Every page of orders/dashboard/urls.py, timed as the order list, against it.

        Each timed request of a page is followed by one of the order list page 1,
        and the ratio is of the two medians: a neighbour's load that comes and
        goes during the run moves both alike.
        """
        from django.db import connection
        from django.db.models import Count
        from django.test.utils import CaptureQueriesContext
        from django.urls import get_resolver

        from orders.dashboard import urls as dashboard_urls
        from orders.models import WalletEntry

        busiest = (
            WalletEntry.objects.values("wallet_id")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("wallet_id", flat=True)
            .first()
        )
        pages = {
            "overview": ("overview", "/dashboard/"),
            "order_detail": ("order detail, 10 vouchers", f"/dashboard/orders/{order_id}/"),
            "audit_log": ("audit log", "/dashboard/audit/"),
            "inventory_stock": ("inventory stock", "/dashboard/inventory/"),
            "inventory_import": ("voucher import form", "/dashboard/inventory/import/"),
            "inventory_vouchers": ("voucher list", "/dashboard/inventory/vouchers/"),
            "inventory_batches": ("import batches", "/dashboard/inventory/batches/"),
            "refund_queue": ("refund queue", "/dashboard/finance/refunds/"),
            "wallet_list": ("wallets", "/dashboard/finance/wallets/"),
            "wallet_detail": (
                "wallet detail, the busiest wallet's ledger",
                f"/dashboard/finance/wallets/{busiest}/",
            ),
            "credit_queue": ("credit requests", "/dashboard/finance/credits/"),
            "reconciliation": ("finance reconciliation", "/dashboard/finance/reconciliation/"),
        }
        # Not pages: the order list is the baseline, the rest answer a POST, are
        # htmx fragments of a page above, need a file being imported, or are CSV
        # downloads (the order export has its own row).
        not_pages = {
            "order_list",
            "order_row",
            "order_cancel",
            "order_retry",
            "order_resend",
            "voucher_masked",
            "voucher_reveal",
            "inventory_import_preview",
            "inventory_import_commit",
            "inventory_voucher_action",
            "inventory_batch_action",
            "refund_decide",
            "wallet_top_up",
            "wallet_adjust",
            "credit_decide",
            "export_orders",
            "export_refunds",
            "export_ledger",
        }
        names = {p.name for p in dashboard_urls.urlpatterns if getattr(p, "name", None)}
        for name in sorted(names - set(pages) - not_pages):
            print(f"  (not timed: dashboard:{name}, a page bench/run.py does not know yet)")
        get_resolver()  # resolve once, outside the timings
        order_list = get("/dashboard/orders/")
        for name, (label, url) in pages.items():
            if name not in names:
                print(f"  (skipped {label}: no dashboard:{name} on this branch)")
                continue
            call = get(url)
            started = time.perf_counter()
            call()
            first_ms = (time.perf_counter() - started) * 1000
            runs = self.runs
            if first_ms > SLOW_PAGE_MS:
                runs = max(3, min(self.runs, int(PAGE_BUDGET_MS / first_ms)))
            with CaptureQueriesContext(connection) as captured:
                call()
            queries = len(captured.captured_queries)
            sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
            samples, list_samples = interleaved(call, order_list, runs=runs)
            median, p95 = summarise(samples)
            list_median, _ = summarise(list_samples)
            ratio = median / list_median
            self.add(
                Row(
                    f"dashboard page: {label}",
                    "ms",
                    median,
                    p95,
                    len(samples),
                    baseline=f"order list page 1, interleaved ({list_median:.1f} ms)",
                    baseline_median=list_median,
                    ratio=ratio,
                    ratio_label="of baseline",
                    goal=f"≤ {PAGE_GOAL:g}× order list",
                    met=ratio is not None and ratio <= PAGE_GOAL,
                    note=f"{queries} queries, {sql_ms:.1f} ms of them in SQL (one request)",
                    extra={"url_name": f"dashboard:{name}", "queries": queries, "sql_ms": sql_ms},
                )
            )

    # --- API through gunicorn ----------------------------------------------------

    def api(self, url: str) -> None:
        """Reads with 2 and with 1 gunicorn workers; orders and the bulk order on 2."""
        from bench import servers

        server_groups = {"api", "orders", "bulk"} & set(self.groups)
        if not server_groups:
            return
        order = None
        if "api" in self.groups:
            order = delivered_one_unit_order()
        reads: dict[int, dict] = {}
        peak: list[float] = []
        # Redis as in production with several workers: the rate limiter and the
        # credential cache are shared through it.
        for workers in SCALING if "api" in self.groups else (2,):
            with servers.gunicorn(url, port=PORT, workers=workers, redis_url=REDIS_URL) as server:
                if order is not None:
                    reads[workers] = self.read_load(url, server, order)
                if workers == 2:
                    if reads:
                        self.read_rows(reads)
                    if "orders" in self.groups:
                        self.orders(url, server)
                    if "bulk" in self.groups:
                        self.bulk(url, server)
                    peak = server.worker_peak_rss_mb()
        if peak:
            self.add(
                Row(
                    "gunicorn worker peak RSS after the run",
                    "MB",
                    max(peak),
                    goal="≤ 150 MB",
                    met=max(peak) <= 150,
                    note=f"each worker: {', '.join(f'{mb:.0f}' for mb in peak)} MB",
                )
            )

    def read_load(self, url: str, server, order) -> dict:
        """The constant view, then the order detail under load, the sealer running."""
        from bench import servers
        from bench.loadgen import run_load
        from bench.seal_lag import SealLag

        duration = 5 if self.quick else 15
        token = servers.api_token(server.base_url, client_id=order.client_id)
        headers = {"Authorization": f"Bearer {token}"}
        # One run_worker process, as production runs one next to gunicorn: it
        # seals the read events (where the sealer exists) while they are made.
        with servers.worker(url, processes=1, redis_url=REDIS_URL):
            constant = run_load(
                f"{server.base_url}/bench/constant.json",
                headers=headers,
                concurrency=8,
                duration=duration,
            )
            with SealLag(url) as lag:
                detail = run_load(
                    f"{server.base_url}/api/v1/orders/{order.pk}",
                    headers=headers,
                    concurrency=8,
                    duration=duration,
                )
        return {"constant": constant, "detail": detail, "seal_lag": lag.result()}

    def read_rows(self, reads: dict[int, dict]) -> None:
        from django.conf import settings

        for workers in sorted(reads, reverse=True):
            constant, detail = reads[workers]["constant"], reads[workers]["detail"]
            ratio = detail["rps"] / constant["rps"]
            name = (
                "GET /api/v1/orders/{id}, gunicorn 2 workers, 8 connections"
                if workers == 2
                else f"same, gunicorn {workers} worker{'s' if workers > 1 else ''}"
            )
            self.add(
                Row(
                    name,
                    "req/s",
                    detail["rps"],
                    None,
                    detail["requests"],
                    baseline=f"constant JSON view, same gunicorn ({constant['rps']:,.0f} req/s)",
                    baseline_median=constant["rps"],
                    ratio=ratio,
                    ratio_label="of baseline",
                    goal=f"≥ {API_GOAL:g} of baseline",
                    met=ratio >= API_GOAL,
                    note=f"latency p50 {detail['p50_ms']:.1f} ms, p95 {detail['p95_ms']:.1f} ms; "
                    f"errors {detail['errors']}",
                    extra={"workers": workers, "detail": detail, "constant": constant},
                )
            )
        if 1 in reads and 2 in reads:
            detail_scale = reads[2]["detail"]["rps"] / reads[1]["detail"]["rps"]
            constant_scale = reads[2]["constant"]["rps"] / reads[1]["constant"]["rps"]
            self.add(
                Row(
                    "API detail, 2 gunicorn workers vs 1",
                    "×",
                    detail_scale,
                    baseline=f"the constant view's 2 vs 1 ({constant_scale:.2f}×)",
                    baseline_median=constant_scale,
                    ratio=detail_scale / constant_scale,
                    ratio_label="of baseline",
                    note="1.00 of baseline: the detail scales with workers as a bare view does",
                )
            )
        if 2 not in reads:
            return
        lag = reads[2]["seal_lag"]
        name = "audit seal lag under the read load (2 workers)"
        if not lag.get("available"):
            self.add(
                Row(name, "", None, note="n/a: orders_auditevent has no sealed_at column here")
            )
            return
        if not lag["samples"]:
            self.add(Row(name, "", None, note=f"no sample taken ({lag['error']})", extra=lag))
            return
        interval = float(getattr(settings, "AUDIT_SEAL_SECONDS", 1.0))
        reads_per_interval = reads[2]["detail"]["rps"] * interval
        self.add(
            Row(
                f"{name}: unsealed events",
                "events",
                lag["backlog_median"],
                lag["backlog_p95"],
                lag["samples"],
                baseline=f"reads in one seal interval ({reads_per_interval:,.0f})",
                baseline_median=reads_per_interval,
                ratio=lag["backlog_p95"] / reads_per_interval if reads_per_interval else None,
                ratio_label="of baseline (p95)",
                note=f"max {lag['backlog_max']:,.0f}; sampled every {lag['interval_s']} s",
                extra=lag,
            )
        )
        self.add(
            Row(
                f"{name}: age of the oldest unsealed",
                "s",
                lag["age_median_s"],
                lag["age_p95_s"],
                lag["samples"],
                baseline=f"AUDIT_SEAL_SECONDS ({interval:g} s)",
                baseline_median=interval,
                ratio=lag["age_p95_s"] / interval if lag["age_p95_s"] is not None else None,
                ratio_label="× seal interval (p95)",
                note=f"max {lag['age_max_s']} s",
            )
        )

    # --- Orders end to end -------------------------------------------------------

    def orders(self, url: str, server) -> None:
        from bench import servers
        from bench.order_load import order_throughput
        from bench.pgbench import pgbench_tps

        per_client = 25 if self.quick else 100
        results = {}
        for processes in sorted(SCALING, reverse=True):
            with servers.worker(url, processes=processes, redis_url=REDIS_URL):
                results[processes] = order_throughput(
                    url, server.base_url, clients=8, orders_per_client=per_client
                )
        pg = pgbench_tps(server_url(url), clients=8, seconds=10 if self.quick else 20)
        for processes, result in results.items():
            rate = result["orders_per_s"]
            if processes == 2:
                self.order_rate = rate
            ratio = rate / pg["tps"] if rate else None
            name = (
                "POST /api/v1/orders → DELIVERED, 8 clients, 2 worker processes"
                if processes == 2
                else f"same, {processes} worker process{'es' if processes > 1 else ''}"
            )
            self.add(
                Row(
                    name,
                    "orders/s",
                    rate,
                    None,
                    result["orders"],
                    baseline=f"pgbench TPC-B-like, 8 clients ({pg['tps']:,.0f} tps)",
                    baseline_median=pg["tps"],
                    ratio=ratio,
                    ratio_label="of baseline",
                    goal=f"≥ {ORDERS_GOAL:g} of baseline",
                    met=ratio is not None and ratio >= ORDERS_GOAL,
                    note=f"POST p50 {result['post_p50_ms']:.0f} ms, "
                    f"p95 {result['post_p95_ms']:.0f} ms; "
                    f"placed→delivered p50 {result['placed_to_delivered_p50_ms']:.0f} ms; "
                    f"errors {result['errors']}",
                    extra={"worker_processes": processes, "orders": result, "pgbench": pg},
                )
            )
        if results.get(1, {}).get("orders_per_s") and results.get(2, {}).get("orders_per_s"):
            scale = results[2]["orders_per_s"] / results[1]["orders_per_s"]
            self.add(
                Row(
                    "orders end to end, 2 worker processes vs 1",
                    "×",
                    scale,
                    baseline="linear (2.00×)",
                    baseline_median=2.0,
                    ratio=scale / 2,
                    ratio_label="of baseline",
                    note="gunicorn, PostgreSQL and the load generator share the same cores",
                )
            )

    # --- One bulk order ------------------------------------------------------------

    def bulk(self, url: str, server) -> None:
        from bench import servers
        from bench.bulk_order import bulk_order

        units = 1_000 if self.quick else 10_000
        rss_before = max(server.worker_peak_rss_mb(), default=0.0)
        with servers.worker(url, processes=2, redis_url=REDIS_URL):
            result = bulk_order(server.base_url, units=units)
        rss_after = max(server.worker_peak_rss_mb(), default=0.0)
        delivered = result["status"] == "DELIVERED" and not result["timed_out"]
        seconds = result["delivered_seconds"]
        one_by_one = units / self.order_rate if self.order_rate else None
        self.add(
            Row(
                f"{units:,}-unit order: POST → DELIVERED, 2 worker processes",
                "s",
                seconds,
                None,
                1,
                baseline=(
                    f"{units:,} one-unit orders at the rate above ({one_by_one:,.1f} s)"
                    if one_by_one
                    else ""
                ),
                baseline_median=one_by_one,
                ratio=seconds / one_by_one if one_by_one else None,
                ratio_label="of baseline",
                goal=f"≤ {BULK_DELIVERED_GOAL_S:g} s",
                met=delivered and seconds <= BULK_DELIVERED_GOAL_S,
                note=f"POST answered in {result['post_seconds']:.2f} s; "
                f"ended {result['status']}/{result['sub_status']}"
                + ("; TIMED OUT" if result["timed_out"] else ""),
                extra=result,
            )
        )
        read = result["read_seconds"]
        constant = result["constant_seconds"]
        self.add(
            Row(
                "GET /api/v1/orders/{id} of that order",
                "s",
                read,
                None,
                len(result["read_seconds_all"]),
                baseline=f"constant JSON of {units:,} vouchers, same gunicorn ({constant:.2f} s)",
                baseline_median=constant,
                ratio=read / constant if read and constant else None,
                ratio_label="of baseline",
                goal=f"≤ {BULK_READ_GOAL_S:g} s",
                met=read is not None and read <= BULK_READ_GOAL_S,
                note=f"{result['vouchers']:,} vouchers, {result['read_bytes'] / 1e6:.1f} MB body; "
                "gunicorn worker peak RSS "
                f"{rss_before:.0f} MB before the order, {rss_after:.0f} MB after its reads",
            )
        )

    # --- Subprocess benchmarks ---------------------------------------------------

    def voucher_import(self) -> None:
        rows = 20_000 if self.quick else 100_000
        args = ["--rows", str(rows), "--json"]
        if os.environ.get("BENCH_IMPORT_DATABASE_URL"):  # default: its own bench_inv
            args += ["--database-url", os.environ["BENCH_IMPORT_DATABASE_URL"]]
        result = json_subprocess("bench/import_vouchers.py", *args)
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


def delivered_one_unit_order():
    """A delivered gift card of the data set: its detail decrypts a voucher and audits the read."""
    from orders.models import Order

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
    return order


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
    value = (
        f"{row.median:,.{2 if row.unit == '×' else 1}f} {row.unit}"
        if row.median is not None
        else "n/a"
    )
    p95 = f"{row.p95:,.1f}" if row.p95 is not None else "–"
    ratio = f"{row.ratio:,.2f} {row.ratio_label}" if row.ratio is not None else "–"
    met = {True: "met", False: "MISSED", None: ""}[row.met]
    return f"{row.name:<66} {value:>16} {p95:>10} {ratio:>30}  {row.goal:<26} {met}"


def header() -> str:
    return (
        f"{'measurement':<66} {'median':>16} {'p95':>10} {'ratio to baseline':>30}  "
        f"{'goal':<26} status"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per in-process page")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups")
    parser.add_argument(
        "--quick", action="store_true", help="shorter load runs, smaller import and bulk order"
    )
    parser.add_argument(
        "--orders-label",
        default="",
        help="name of the data set, e.g. 5M: results go to bench/results/latest-<label>.json",
    )
    args = parser.parse_args()
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    if args.orders_label and not args.orders_label.isalnum():
        parser.error("--orders-label: letters and digits only, e.g. 5M")
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
    bench = Bench(runs=args.runs, quick=args.quick, groups=groups)
    if "dashboard" in groups:
        bench.dashboard()
    bench.api(url)  # the api, orders and bulk groups share gunicorn
    if "import" in groups:
        bench.voucher_import()
    if "export" in groups:
        bench.export(url)

    RESULTS.mkdir(exist_ok=True)
    document = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "orders": orders,
        "orders_label": args.orders_label,
        "groups": groups,
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [asdict(row) for row in bench.rows],
    }
    name = f"latest-{args.orders_label}.json" if args.orders_label else "latest.json"
    (RESULTS / name).write_text(json.dumps(document, indent=2, default=str))
    missed = [row.name for row in bench.rows if row.met is False]
    print(
        f"\n{len(bench.rows)} measurements in {document['seconds']:.0f} s; "
        f"{len(bench.rows) - len(missed)} goals met or without a goal, {len(missed)} missed. "
        f"Written to {(RESULTS / name).relative_to(ROOT)}."
    )


if __name__ == "__main__":
    main()
