"""Baseline: what this PostgreSQL does with pgbench's built-in TPC-B-like script.

`pgbench_tps` creates (once) the database `bench_pgbench`, initialises it with
`pgbench -i -s <scale>` when it is missing or of another scale, then runs
`pgbench -c <clients> -j 2 -T <seconds>` and returns the tps and average
latency it reports. It measures the same server and machine the order
benchmark uses, so orders/s can be read against transactions/s.

    .venv/bin/python bench/pgbench.py [--clients 8] [--seconds 15] [--scale 10]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402

DATABASE = os.environ.get("BENCH_PGBENCH_DATABASE", "bench_pgbench")
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
THREADS = 2


def _database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def _without_password(server_url: str) -> str:
    parts = urlsplit(server_url)
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))


def _pgbench() -> str:
    found = shutil.which("pgbench")
    if found is None:
        raise RuntimeError("pgbench is not installed (apt-get install postgresql-client)")
    return found


def _current_scale(url: str) -> int | None:
    """Rows of pgbench_branches (= the scale it was initialised with), None if missing."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        table = conn.execute("SELECT to_regclass('public.pgbench_branches')").fetchone()
        if table is None or table[0] is None:
            return None
        row = conn.execute("SELECT count(*) FROM pgbench_branches").fetchone()
        return int(row[0]) if row else None


def _run(argv: list[str], *, password: str | None, timeout: float, what: str) -> str:
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password  # not on the command line, where ps shows it
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{what} exited with {completed.returncode}: {completed.stderr.strip()[-1500:]}"
        )
    return completed.stdout + completed.stderr


def _number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def pgbench_tps(
    server_url: str = SERVER_URL, *, clients: int = 8, seconds: int = 15, scale: int = 10
) -> dict[str, object]:
    """TPC-B-like throughput of the PostgreSQL at `server_url` (no database in it).

    Returns tps (excluding connection time), latency_avg_ms, transactions,
    failed, clients, threads, seconds, scale and initialised (True when this
    call ran `pgbench -i`).
    """
    if not 1 <= clients <= 64 or not 1 <= seconds <= 600 or not 1 <= scale <= 1000:
        raise ValueError("clients 1..64, seconds 1..600, scale 1..1000")
    pgbench = _pgbench()
    url = _database_url(server_url, DATABASE)
    ensure_database(url)
    password = urlsplit(server_url).password
    bare_url = _without_password(url)
    initialised = False
    if _current_scale(url) != scale:
        # -q: progress every 5 s instead of every 100,000 rows.
        _run(
            [pgbench, "-i", "-q", "-s", str(scale), bare_url],
            password=password,
            timeout=1800,
            what="pgbench -i",
        )
        initialised = True
    output = _run(
        [
            pgbench,
            "-c",
            str(clients),
            "-j",
            str(min(THREADS, clients)),
            "-T",
            str(seconds),
            bare_url,
        ],
        password=password,
        timeout=seconds + 300,
        what="pgbench",
    )
    tps = _number(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if tps is None:
        tps = _number(r"tps = ([0-9.]+)", output)
    if tps is None:
        raise RuntimeError(f"no tps in pgbench's output: {output.strip()[-500:]}")
    return {
        "server": _without_password(server_url),
        "tps": round(tps, 1),
        "latency_avg_ms": _number(r"latency average = ([0-9.]+) ms", output),
        "transactions": int(
            _number(r"number of transactions actually processed: (\d+)", output) or 0
        ),
        "failed": int(_number(r"number of failed transactions: (\d+)", output) or 0),
        "clients": clients,
        "threads": min(THREADS, clients),
        "seconds": seconds,
        "scale": scale,
        "initialised": initialised,
    }


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", default=SERVER_URL)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--scale", type=int, default=10)
    args = parser.parse_args()
    print(
        json.dumps(
            pgbench_tps(
                args.server_url, clients=args.clients, seconds=args.seconds, scale=args.scale
            )
        )
    )


if __name__ == "__main__":
    _main()
