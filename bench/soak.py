"""Fault soak: two web hosts and two RQ workers under a mixed load while the
things an operator fears happen, then proof that nothing was lost or doubled.

    make soak                       # about 4 minutes; SOAK_ARGS="--load-seconds 60"
    .venv/bin/python bench/soak.py --load-seconds 100

What runs (all on 127.0.0.1, all children of this script, stopped at the end):
- its own redis-server on a free port (never the machine's shared one: this
  script stops it), used for the cache, sessions, rate limits and RQ;
- a fresh PostgreSQL database, `SOAK_DATABASE_URL` (default
  postgres://postgres@127.0.0.1:5432/starship_soak), dropped and created again;
- two gunicorn masters on two ports (two hosts) and two `run_worker` processes
  with TASKS_BACKEND=django_tasks_rq.RQBackend.

The load, for --load-seconds: partners placing orders over the API, from stock
and from the (simulated) vendor, on either host, retrying a failed POST with the
same reference_code as docs/api.md tells them to; partners polling order
details; a support agent revealing delivered vouchers and listing orders with
one session on both hosts; an inventory admin importing a file previewed on one
host and committed on the other.

The faults, at fixed points of the load (the `FAULTS` table): a worker is
SIGKILLed and started again 5 s later; every connection the application holds
to PostgreSQL is terminated (`pg_terminate_backend`); Redis is stopped (SIGSTOP)
for 10 s, so it neither answers nor refuses, then continued.

The end checks (exit status 1 if one fails): every order terminal, no voucher
on two orders, every accepted reference_code one order, `check_ledger` and
`check_audit_chain` clean (after the sealer caught up), no 5xx outside the fault
windows, and every error answer JSON. What clients saw in each fault window is
printed and written to bench/results/soak-latest.json; docs/operations.md holds
the figures of a run. A benchmark-style script: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.common import percentile, rounded, server_url  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/starship_soak"
RQ_BACKEND = "django_tasks_rq.RQBackend"
RESULTS = ROOT / "bench" / "results"
CHECKPOINTS = RESULTS / "soak-audit-checkpoints.jsonl"

# (name, seconds into the load, how long it lasts). A window for the answers
# runs from the fault's start until GRACE_S after it ends.
FAULTS = [
    ("worker SIGKILL, restart 5 s later", 0.20, 5.0),
    ("pg_terminate_backend of the app's connections", 0.45, 0.0),
    ("Redis stopped (SIGSTOP) for 10 s", 0.70, 10.0),
]
GRACE_S = 5.0
REQUEST_TIMEOUT_S = 20.0  # a client that waits longer calls it a hang
STOCK_UNITS = 2_000
IMPORT_UNITS = 300
DENOMINATION = "10.00"
CURRENCY = "USD"
REVEAL_EVERY_S = 4.0  # under REVEAL_RATE_PER_HOUR (30) for a 100 s load
DRAIN_TIMEOUT_S = 240.0


# --- what the clients saw ----------------------------------------------------


@dataclass
class Answer:
    at: float  # seconds since the load started
    kind: str  # order, read, reveal, list, import
    host: int
    status: str  # "201", "503", or the exception's name
    clear: bool  # JSON (the API), or the 503 page that says to try again (the dashboard)
    ms: float


@dataclass
class Seen:
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # the same moment, wall clock
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self, kind: str, host: int, send: Callable[[], httpx.Response]
    ) -> httpx.Response | None:
        begun = time.monotonic()
        response: httpx.Response | None
        try:
            response = send()
            status = str(response.status_code)
            clear = response.headers.get("content-type", "").startswith("application/json") or (
                response.status_code == 503 and "Briefly unavailable" in response.text
            )
        except httpx.HTTPError as exc:
            response, status, clear = None, type(exc).__name__, False
        answer = Answer(
            at=begun - self.started,
            kind=kind,
            host=host,
            status=status,
            clear=clear,
            ms=(time.monotonic() - begun) * 1000,
        )
        with self.lock:
            self.answers.append(answer)
        return response


# --- processes ----------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((servers.HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _own_redis(log_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "make soak needs redis-server on PATH (Debian: apt-get install redis-server)"
        )
    port = _free_port()
    argv = [binary, "--bind", servers.HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    process = servers._spawn(argv, env=dict(os.environ), log_path=log_dir / "redis.log")
    url = f"redis://{servers.HOST}:{port}/0"
    deadline = time.monotonic() + 10
    import redis

    while True:
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise SystemExit("the soak's redis-server did not start") from None
            time.sleep(0.05)
    try:
        yield process, url
    finally:
        os.kill(process.pid, signal.SIGCONT)  # never leave it stopped
        servers._stop(process)


def _fresh_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _terminate_app_connections(url: str) -> int:
    """Terminate every connection to the soak database but this script's own."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND application_name <> 'starship-soak'",
            [name],
        ).fetchall()
    return len(rows)


# --- setup, through the services ----------------------------------------------


@dataclass
class World:
    stock_product: int
    vendor_product: int
    import_product: int
    client_id: int
    session: str
    csrf: str
    token: str = ""


def _setup(url: str) -> World:
    from django.core.management import call_command
    from django.test import Client as Browser

    from bench.order_load import _load_clients, _stock_up
    from orders.enums import DeliveryType, ProductKind
    from orders.models import Product, Vendor

    call_command("migrate", verbosity=0)
    vendor = Vendor.objects.create(code="soak", name="Soak vendor")

    def product(name: str) -> int:
        return Product.objects.create(
            name=name,
            vendor=vendor,
            brand="Soak",
            kind=ProductKind.GIFT_CARD,
            currency=CURRENCY,
            denominations=[DENOMINATION],
            delivery_type=DeliveryType.CODE_WITH_PIN,
            description="Fault soak product.",
        ).pk

    stocked, vendored, imported = (
        product("Soak stock card"),
        product("Soak vendor card"),
        product("Soak import card"),
    )
    _stock_up(stocked, STOCK_UNITS)
    (client_id,) = _load_clients(1, funds=Decimal("1000000.00"), prefix="Soak client")

    from django.contrib.auth import get_user_model

    agent = get_user_model().objects.create_user(username="soak-agent", password=None)
    agent.is_staff = agent.is_superuser = True
    agent.save()
    browser = Browser()
    browser.force_login(agent)
    return World(
        stock_product=stocked,
        vendor_product=vendored,
        import_product=imported,
        client_id=client_id,
        session=browser.cookies["sessionid"].value,
        csrf=secrets.token_hex(16),  # a 32-character secret is a valid form token
    )


# --- the load -------------------------------------------------------------------


@dataclass
class Ledger:
    """What the partners were told: reference_code -> order id (None: never accepted)."""

    accepted: dict[str, int | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered_like(self) -> list[int]:
        with self.lock:
            return [i for i in self.accepted.values() if i is not None]


def _partner(
    seen: Seen, hosts: list[str], world: World, ledger: Ledger, stop: threading.Event, n: int
) -> None:
    headers = {"Authorization": f"Bearer {world.token}", "Accept": "application/json"}
    clients = [httpx.Client(base_url=h, headers=headers, timeout=REQUEST_TIMEOUT_S) for h in hosts]
    count = 0
    try:
        while not stop.is_set():
            count += 1
            ref = f"SOAK-{n}-{count:05d}"
            vendor = count % 5 == 0
            body = {
                "product_id": world.vendor_product if vendor else world.stock_product,
                "denomination": DENOMINATION,
                "quantity": 1 + count % 2,
                "reference_code": ref,
                "payment_method": "wallet",
                "customer": {"name": "Soak Partner", "email": "soak@example.com"},
            }
            with ledger.lock:
                ledger.accepted[ref] = None
            # The same body again until answered (docs/api.md, Idempotency).
            for attempt in range(60):
                host = (count + attempt) % 2
                response = seen.call(
                    "order", host, partial(clients[host].post, "/api/v1/orders", json=body)
                )
                if response is not None and response.status_code in (200, 201):
                    with ledger.lock:
                        ledger.accepted[ref] = int(response.json()["id"])
                    break
                if response is not None and response.status_code < 500:
                    break  # a 4xx is an answer: the load's bug, counted in the table
                time.sleep(1.0)
            stop.wait(0.25)
    finally:
        for client in clients:
            client.close()


def _poller(
    seen: Seen, hosts: list[str], world: World, ledger: Ledger, stop: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {world.token}", "Accept": "application/json"}
    clients = [httpx.Client(base_url=h, headers=headers, timeout=REQUEST_TIMEOUT_S) for h in hosts]
    n = 0
    try:
        while not stop.is_set():
            ids = ledger.delivered_like()
            if ids:
                n += 1
                order_id = ids[-1 - (n % min(len(ids), 20))]
                host = n % 2
                seen.call("read", host, partial(clients[host].get, f"/api/v1/orders/{order_id}"))
            stop.wait(0.2)
    finally:
        for client in clients:
            client.close()


def _agent(seen: Seen, hosts: list[str], world: World, stop: threading.Event) -> None:
    """A support agent with one session on both hosts: lists orders, reveals vouchers."""
    from orders.models import Voucher

    cookies = {"sessionid": world.session, "csrftoken": world.csrf}
    clients = [
        httpx.Client(base_url=h, cookies=cookies, timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        for h in hosts
    ]
    n = 0
    try:
        while not stop.wait(REVEAL_EVERY_S / 2):
            n += 1
            host = n % 2
            seen.call("list", host, partial(clients[host].get, "/dashboard/orders/"))
            if n % 2:
                continue
            with contextlib.suppress(Exception):  # the database may be the fault right now
                voucher = (
                    Voucher.objects.filter(status="DELIVERED").order_by("-pk").values("pk").first()
                )
                if voucher is None:
                    continue
                reveal = partial(
                    clients[host].post,
                    f"/dashboard/vouchers/{voucher['pk']}/reveal/",
                    data={"reason": "not_received", "csrfmiddlewaretoken": world.csrf},
                    headers={"HX-Request": "true", "Referer": f"{hosts[host]}/dashboard/"},
                )
                seen.call("reveal", host, reveal)
    finally:
        for client in clients:
            client.close()


def _import(seen: Seen, hosts: list[str], world: World) -> str:
    """An inventory admin's import: uploaded and previewed on host 0, committed on host 1."""
    from orders.services.import_file import CSV_COLUMNS

    run = secrets.token_hex(4).upper()
    rows = [f"SOAKIMP{run}{n:06d},{n:06d},,,2099-12-31,{DENOMINATION}" for n in range(IMPORT_UNITS)]
    body = ("\n".join([",".join(CSV_COLUMNS), *rows]) + "\n").encode()
    cookies = {"sessionid": world.session, "csrftoken": world.csrf}
    form = {"csrfmiddlewaretoken": world.csrf}
    with (
        httpx.Client(base_url=hosts[0], cookies=cookies, timeout=60) as one,
        httpx.Client(base_url=hosts[1], cookies=cookies, timeout=60) as two,
    ):
        uploaded = seen.call(
            "import",
            0,
            lambda: one.post(
                "/dashboard/inventory/import/",
                data={**form, "product": str(world.import_product)},
                files={"file": ("soak.csv", body, "text/csv")},
            ),
        )
        if uploaded is None or uploaded.status_code != 302:
            return f"upload answered {uploaded.status_code if uploaded else 'nothing'}"
        preview_path = uploaded.headers["Location"]
        preview = seen.call("import", 1, lambda: two.get(preview_path))
        if preview is None or f"Ready to import {IMPORT_UNITS} vouchers" not in preview.text:
            return "the preview on the second host did not offer the rows"
        committed = seen.call(
            "import", 1, lambda: two.post(preview_path.rstrip("/") + "/commit/", data=form)
        )
        if committed is None or committed.status_code != 302:
            return f"commit answered {committed.status_code if committed else 'nothing'}"
    return "ok"


# --- the end checks ---------------------------------------------------------------


def _command(*argv: str) -> tuple[int, str]:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    try:
        call_command(*argv, stdout=out, stderr=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    except Exception as exc:  # a failed check raises CommandError
        return 1, f"{out.getvalue()}{type(exc).__name__}: {exc}"
    return 0, out.getvalue()


def _wait_terminal(order_ids: list[int], timeout: float) -> Counter[str]:
    from django.db.models import Count

    from orders.models import Order

    deadline = time.monotonic() + timeout
    while True:
        rows = Order.objects.filter(pk__in=order_ids).values("status").annotate(n=Count("id"))
        counts = Counter({row["status"]: row["n"] for row in rows})
        if not (counts["PLACED"] or counts["PENDING"]) or time.monotonic() > deadline:
            return counts
        time.sleep(1.0)


def _doubled_vouchers() -> int:
    from django.db.models import Count

    from orders.models import OrderItem

    return (
        OrderItem.objects.exclude(voucher=None)
        .values("voucher")
        .annotate(n=Count("order", distinct=True))
        .filter(n__gt=1)
        .count()
    )


def _windows(load_seconds: float) -> list[tuple[str, float, float]]:
    return [
        (name, at * load_seconds, at * load_seconds + lasts + GRACE_S) for name, at, lasts in FAULTS
    ]


def _delivery_seconds(order_ids: list[int], started_at: float) -> list[tuple[float, float]]:
    """(placed, seconds from placed to delivered) of each delivered order, placed
    in seconds since the load started."""
    from orders.models import Order

    rows = Order.objects.filter(pk__in=order_ids, delivered_at__isnull=False)
    return [
        (placed.timestamp() - started_at, (delivered - placed).total_seconds())
        for placed, delivered in rows.values_list("placed_at", "delivered_at")
    ]


def _deliveries(times: list[tuple[float, float]]) -> dict[str, Any]:
    seconds = [s for _, s in times]
    return {
        "orders_placed": len(seconds),
        "delivered_p50_s": rounded(percentile(seconds, 0.5), 2),
        "delivered_max_s": rounded(max(seconds, default=None), 2),
    }


def _summarise(
    seen: Seen, windows: list[tuple[str, float, float]], deliveries: list[tuple[float, float]]
) -> dict[str, Any]:
    def block(answers: list[Answer]) -> dict[str, Any]:
        ms = [a.ms for a in answers]
        errors = [a for a in answers if not a.status.startswith(("2", "3"))]
        return {
            "requests": len(answers),
            "statuses": dict(Counter(a.status for a in answers).most_common()),
            "errors_not_clear": sum(1 for a in errors if not a.clear),
            "p50_ms": rounded(percentile(ms, 0.5), 1),
            "max_ms": rounded(max(ms, default=None), 1),
            "by_kind": {
                kind: {
                    "statuses": dict(Counter(a.status for a in answers if a.kind == kind)),
                    "max_ms": rounded(max(a.ms for a in answers if a.kind == kind), 1),
                }
                for kind in sorted({a.kind for a in answers})
            },
        }

    def inside(answer: Answer) -> bool:
        return any(start <= answer.at <= end for _, start, end in windows)

    def placed_inside(placed: float) -> bool:
        return any(start <= placed <= end for _, start, end in windows)

    return {
        "outside_faults": block([a for a in seen.answers if not inside(a)])
        | _deliveries([d for d in deliveries if not placed_inside(d[0])]),
        "faults": {
            name: {"from_s": round(start, 1), "to_s": round(end, 1)}
            | block([a for a in seen.answers if start <= a.at <= end])
            | _deliveries([d for d in deliveries if start <= d[0] <= end])
            for name, start, end in windows
        },
    }


# --- main ---------------------------------------------------------------------------


def soak(database_url: str, load_seconds: float, log_dir: Path) -> dict[str, Any]:
    _fresh_database(database_url)
    CHECKPOINTS.parent.mkdir(exist_ok=True)
    CHECKPOINTS.unlink(missing_ok=True)
    with ExitStack() as stack:
        redis_process, redis_url = stack.enter_context(_own_redis(log_dir))
        os.environ.update(
            TASKS_BACKEND=RQ_BACKEND,
            REDIS_URL=redis_url,
            CACHE_KEY_PREFIX="starship-soak",
            AUDIT_CHECKPOINT_PATH=str(CHECKPOINTS),
            TASK_LEASE_SECONDS="10",  # a killed worker's orders resume within the soak
            WORKER_SWEEP_SECONDS="2",
            VENDOR_SIM_LATENCY_MS="100",
        )
        from bench.common import setup_django

        setup_django(
            database_url + "?application_name=starship-soak",
            settings_module=servers.SETTINGS_MODULE,
        )
        world = _setup(database_url)
        ports = [_free_port(), _free_port()]
        hosts = [
            stack.enter_context(
                servers.gunicorn(
                    database_url, port=port, workers=2, redis_url=redis_url, log_dir=log_dir
                )
            ).base_url
            for port in ports
        ]
        workers = [
            stack.enter_context(
                servers.worker(database_url, redis_url=redis_url, log_dir=log_dir / f"worker-{n}")
            )
            for n in (1, 2)
        ]
        world.token = servers.api_token(hosts[0], client_id=world.client_id)

        seen, ledger, stop = Seen(), Ledger(), threading.Event()
        threads = [
            threading.Thread(target=_partner, args=(seen, hosts, world, ledger, stop, n))
            for n in (1, 2, 3)
        ]
        threads.append(threading.Thread(target=_poller, args=(seen, hosts, world, ledger, stop)))
        threads.append(threading.Thread(target=_agent, args=(seen, hosts, world, stop)))
        for thread in threads:
            thread.start()
        faults: dict[str, Any] = {}
        imported = "not run"
        try:
            at = _windows(load_seconds)
            # 1. a worker dies mid-flight and comes back
            _sleep_until(seen, at[0][1])
            os.killpg(workers[0].pids[0], signal.SIGKILL)
            time.sleep(FAULTS[0][2])
            stack.enter_context(
                servers.worker(database_url, redis_url=redis_url, log_dir=log_dir / "worker-1b")
            )
            # the import, between faults, across the two hosts
            imported = _import(seen, hosts, world)
            # 2. the database drops every connection
            _sleep_until(seen, at[1][1])
            faults["connections_terminated"] = _terminate_app_connections(database_url)
            # 3. Redis stops answering
            _sleep_until(seen, at[2][1])
            os.kill(redis_process.pid, signal.SIGSTOP)
            time.sleep(FAULTS[2][2])
            os.kill(redis_process.pid, signal.SIGCONT)
            _sleep_until(seen, load_seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT_S * 3)

        drain_started = time.monotonic()
        order_ids = ledger.delivered_like()
        statuses = _wait_terminal(order_ids, DRAIN_TIMEOUT_S)
        drained_s = time.monotonic() - drain_started
        seal_code, _ = _command("check_audit_chain", "--seal")
        audit_code, audit_out = _command("check_audit_chain")
        ledger_code, ledger_out = _command("check_ledger")
        from orders.models import Order

        orders_in_db = Order.objects.filter(client_id=world.client_id).count()
        deliveries = _delivery_seconds(order_ids, seen.started_at)
        summary = _summarise(seen, _windows(load_seconds), deliveries)
        never_accepted = sum(1 for i in ledger.accepted.values() if i is None)
        checks = {
            "every order terminal": not (statuses["PLACED"] or statuses["PENDING"]),
            "no voucher on two orders": _doubled_vouchers() == 0,
            "one order per accepted reference_code": orders_in_db == len(order_ids),
            "every reference_code accepted in the end": never_accepted == 0,
            "check_ledger clean": ledger_code == 0,
            "check_audit_chain clean": audit_code == 0 and seal_code == 0,
            "no 5xx outside the fault windows": not any(
                s.startswith("5") for s in summary["outside_faults"]["statuses"]
            ),
            "every error answer JSON or the 503 page, none a hang": not any(
                a.status[0] in "45" or not a.status.isdigit()
                for a in seen.answers
                if not a.clear and a.status not in ("429",)
            ),
            "the import across two hosts": imported == "ok",
        }
        return {
            "load_seconds": load_seconds,
            "orders_accepted": len(order_ids),
            "order_statuses": dict(statuses),
            "drain_seconds": round(drained_s, 1),
            "import": imported,
            "faults_detail": faults,
            "check_ledger": ledger_out.strip().splitlines()[-1:] or [""],
            "check_audit_chain": audit_out.strip().splitlines()[-1:] or [""],
            **summary,
            "checks": checks,
        }


def _sleep_until(seen: Seen, at: float) -> None:
    time.sleep(max(0.0, at - (time.monotonic() - seen.started)))


def _print(result: dict[str, Any]) -> None:
    print(
        f"\nSoak: {result['load_seconds']:.0f} s of load, {result['orders_accepted']} orders accepted, "
        f"drained in {result['drain_seconds']} s: {result['order_statuses']}"
    )
    print(f"import across two hosts: {result['import']}")

    def row(name: str, block: dict[str, Any]) -> None:
        print(
            f"  {name}: {block['requests']} requests, {block['statuses']}, "
            f"p50 {block['p50_ms']} ms, max {block['max_ms']} ms, "
            f"error answers not clear: {block['errors_not_clear']}; "
            f"{block['orders_placed']} orders placed, delivered p50 {block['delivered_p50_s']} s, "
            f"max {block['delivered_max_s']} s"
        )
        for kind, seen_ in block["by_kind"].items():
            print(f"      {kind}: {seen_['statuses']}, max {seen_['max_ms']} ms")

    row("outside the fault windows", result["outside_faults"])
    for name, block in result["faults"].items():
        row(f"{name} [{block['from_s']}-{block['to_s']} s]", block)
    print("end checks:")
    for name, ok in result["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--load-seconds", type=float, default=100.0)
    parser.add_argument("--log-dir", default=str(RESULTS / "soak-logs"))
    args = parser.parse_args()
    if not 30 <= args.load_seconds <= 600:
        parser.error("--load-seconds must be between 30 and 600")
    servers.stop_on_sigterm()
    log_dir = Path(args.log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    result = soak(args.database_url, args.load_seconds, log_dir)
    (RESULTS / "soak-latest.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    _print(result)
    print(f"\nlogs: {log_dir}; figures: {RESULTS / 'soak-latest.json'}")
    sys.exit(0 if all(result["checks"].values()) else 1)


if __name__ == "__main__":
    main()
