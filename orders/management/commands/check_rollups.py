"""Verify that the dashboard's rollups equal the figures of the raw rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.services.rollups import rollups_differences


class Command(BaseCommand):
    help = (
        "Recompute every dashboard rollup from the raw rows and report each difference; "
        "exit 1 if any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        check = rollups_differences()
        if check.refreshed_at is None:
            raise CommandError("rollups not built yet: the worker's sweep builds them.")
        for difference in check.differences:
            self.stdout.write(f"DIFFERENCE {difference}")
        pending = (
            f"; {check.pending_buckets} bucket(s) changed since, left to the next refresh"
            if check.pending_buckets
            else ""
        )
        if check.differences:
            raise CommandError(
                f"rollups wrong: {len(check.differences)} row(s) differ from the raw rows{pending}."
            )
        self.stdout.write(f"rollups OK as of {check.refreshed_at:%Y-%m-%d %H:%M:%S %Z}{pending}")
