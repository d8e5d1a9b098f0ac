"""Benchmark: validate + commit a 100,000-row voucher CSV against PostgreSQL.

    .venv/bin/python bench/import_vouchers.py [--rows 100000] [--database-url postgres://…/bench_inv]

Creates the database if it is missing (psycopg), migrates it, generates the CSV
into a temporary file row by row, then times voucher_import_validate and
voucher_import_commit and prints rows/s and the process's peak RSS. Every run
uses a new product, so earlier runs never make the codes duplicates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import database_name, ensure_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench_inv"
GOAL_ROWS_PER_S = 5000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_csv(path: Path, rows: int, denominations: list[str]) -> None:
    run = secrets.token_hex(4).upper()
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(
            "card_number,pin_code,voucher_reference_number,claim_url,expires_at,denomination\n"
        )
        for i in range(rows):
            handle.write(
                f"{run}-{i:010d},{i % 1000000:06d},REF{i:08d},,2030-12-31,"
                f"{denominations[i % len(denominations)]}\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args()

    if ensure_database(args.database_url):
        print(f"created database {database_name(args.database_url)}")
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "starship.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from orders.enums import DeliveryType, ProductKind
    from orders.models import Product, Vendor, Voucher
    from orders.services.actors import Actor
    from orders.services.imports import voucher_import_commit, voucher_import_validate

    vendor, _ = Vendor.objects.get_or_create(code="bench", defaults={"name": "Bench vendor"})
    denominations = ["10.00", "25.00", "50.00", "100.00"]
    product = Product.objects.create(
        vendor=vendor,
        name=f"Bench gift card {secrets.token_hex(3)}",
        brand="Bench",
        kind=ProductKind.GIFT_CARD,
        currency="USD",
        denominations=denominations,
        delivery_type=DeliveryType.CODE_WITH_PIN,
    )
    actor = Actor.system("bench")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vouchers.csv"
        write_csv(path, args.rows, denominations)
        size_mb = path.stat().st_size / 1e6
        rss_start = peak_rss_mb()
        print(
            f"file: {args.rows:,} rows, {size_mb:.1f} MB; peak RSS before import {rss_start:.0f} MB"
        )

        started, cpu = time.perf_counter(), cpu_seconds()
        with path.open(encoding="utf-8-sig", newline="") as stream:
            preview = voucher_import_validate(
                product_id=product.pk, stream=stream, file_name=path.name, actor=actor
            )
        validated, validate_cpu = time.perf_counter() - started, cpu_seconds() - cpu
        assert preview.is_valid, preview.errors[:5] or preview.file_error
        print(
            f"validate: {validated:.2f} s, {args.rows / validated:,.0f} rows/s "
            f"(this process: {validate_cpu:.2f} CPU s, {args.rows / validate_cpu:,.0f} rows/CPU s), "
            f"peak RSS {peak_rss_mb():.0f} MB"
        )

        started, cpu = time.perf_counter(), cpu_seconds()
        with path.open(encoding="utf-8-sig", newline="") as stream:
            batch = voucher_import_commit(batch_id=preview.batch_id, stream=stream, actor=actor)
        committed, commit_cpu = time.perf_counter() - started, cpu_seconds() - cpu
        print(
            f"commit:   {committed:.2f} s, {args.rows / committed:,.0f} rows/s "
            f"(this process: {commit_cpu:.2f} CPU s, {args.rows / commit_cpu:,.0f} rows/CPU s), "
            f"peak RSS {peak_rss_mb():.0f} MB"
        )

    total = validated + committed
    assert batch.imported_count == args.rows == Voucher.objects.filter(batch=batch).count()
    print(
        f"total:    {total:.2f} s, {args.rows / total:,.0f} rows/s end to end "
        f"(goal {GOAL_ROWS_PER_S:,} rows/s per phase); peak RSS {peak_rss_mb():.0f} MB "
        f"(+{peak_rss_mb() - rss_start:.0f} MB during import); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.json:
        figures = {
            "rows": args.rows,
            "rows_per_s": args.rows / total,
            "validate_rows_per_s": args.rows / validated,
            "commit_rows_per_s": args.rows / committed,
            "validate_rows_per_cpu_s": args.rows / validate_cpu,
            "commit_rows_per_cpu_s": args.rows / commit_cpu,
            "peak_rss_mb": peak_rss_mb(),
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
