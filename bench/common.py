"""What every benchmark script shares: databases, Django setup and the percentile.

The benchmark database is `BENCH_DATABASE_URL`, by default
postgres://postgres@127.0.0.1:5432/bench. It is created when missing and is
never the development or test database; the scripts with a database of their
own (bench_export, bench_inv, bench_pgbench) create it with the same
`ensure_database`.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
# The product of the bulk-order benchmark: made by generate.py, ordered by bulk_order.py.
BULK_PRODUCT_NAME = "Bench bulk gift card 10 USD"
BULK_LIMIT = 10_000


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def server_url(url: str) -> str:
    """The same server with the maintenance database `postgres`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(url: str) -> bool:
    """Create the database of `url` on its server when missing; True when created."""
    name = database_name(url)
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return not exists


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (`fraction` 0.95 = p95) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def setup_django(url: str, *, settings_module: str = "starship.settings") -> None:
    """Point Django at the benchmark database, with DEBUG off (DEBUG keeps every query)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40)
    # The bench database's audit checkpoints stay apart from the development ones.
    # bench/results is git-ignored: a fresh clone has none until something makes it.
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    os.environ.setdefault(
        "AUDIT_CHECKPOINT_PATH", str(ROOT / "bench" / "results" / "audit-checkpoints.jsonl")
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()


def rounded(value: float | None, places: int = 2) -> float | None:
    """A figure for the results (milliseconds to 2 places); None stays None."""
    return None if value is None else round(value, places)
