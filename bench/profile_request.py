"""Where one request's time goes: its statements and a cProfile, in process.

    .venv/bin/python bench/profile_request.py /dashboard/finance/reconciliation/
    .venv/bin/python bench/profile_request.py --api /api/v1/orders/123 [--runs 20] [--top 25]

Against BENCH_DATABASE_URL with bench settings, through Django's test client
as bench/run.py times pages: a dashboard URL as the superuser `bench-admin`,
an API URL (`--api`) with a Bearer token of a new credential of the order's
client (never printed). Prints the request's statements, slowest first, with
their time (one request, captured), then the functions with the most
cumulative and the most own time over `--runs` requests (after 3 untimed). For the
"Goals not met, and why" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database_url, setup_django


def dashboard_call(url: str) -> Callable[[], object]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    browser = Client()
    browser.force_login(user)

    def call() -> object:
        response = browser.get(url)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        return b"".join(response) if response.streaming else response.content

    return call


def api_call(url: str) -> Callable[[], object]:
    from django.test import Client

    from orders.models import Client as ApiClient
    from orders.models import Order
    from orders.services.actors import Actor
    from orders.services.clients import credential_issue

    match = re.search(r"/orders/(\d+)", url)
    if match is None:
        raise SystemExit("--api needs an order URL: /api/v1/orders/<id>")
    order = Order.objects.filter(pk=int(match.group(1))).values("client_id").first()
    if order is None:
        raise SystemExit(f"no order {match.group(1)}")
    issued = credential_issue(
        client=ApiClient.objects.get(pk=order["client_id"]),
        actor=Actor.system("bench"),
        label="bench profile",
    )
    http = Client()
    answer = http.post(
        "/api/v1/auth/token",
        {"api_key": issued.credential.public_key, "api_secret": issued.secret},
        content_type="application/json",
    )
    if answer.status_code != 200:
        raise SystemExit(f"POST /api/v1/auth/token answered {answer.status_code}")
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call() -> object:
        response = http.get(url, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}")
        return b"".join(response) if response.streaming else response.content

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--api", action="store_true", help="an API URL: authenticate as a client")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")
    setup_django(database_url(), settings_module="bench.settings")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = api_call(args.url) if args.api else dashboard_call(args.url)
    for _ in range(3):
        call()
    with CaptureQueriesContext(connection) as captured:
        call()
    queries = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))
    total = sum(float(q["time"]) for q in queries) * 1000
    print(f"{len(queries)} statements, {total:.1f} ms in SQL (one request), slowest first:")
    for query in queries:
        print(f"  {float(query['time']) * 1000:8.2f} ms  {query['sql'][:160]}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.runs):
        call()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"\ncProfile of {args.runs} requests ({stats.total_tt * 1000 / args.runs:.1f} ms each):")
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
