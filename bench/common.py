"""What every benchmark script shares: the database it runs against and Django setup.

The benchmark database is `BENCH_DATABASE_URL`, by default
postgres://postgres@127.0.0.1:5432/bench. It is created when missing and is
never the development or test database.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def server_url(url: str) -> str:
    """The same server with the maintenance database `postgres`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(server_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, *, settings_module: str = "starship.settings") -> None:
    """Point Django at the benchmark database, with DEBUG off (DEBUG keeps every query)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40)
    # The bench database's audit checkpoints stay apart from the development ones.
    os.environ.setdefault(
        "AUDIT_CHECKPOINT_PATH", str(ROOT / "bench" / "results" / "audit-checkpoints.jsonl")
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
