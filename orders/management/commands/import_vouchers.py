"""Import voucher codes from a CSV file: validate, show the preview, then import."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.errors import DomainError, VoucherImportRejected
from orders.services.actors import Actor
from orders.services.import_file import CSV_COLUMNS, RowError
from orders.services.imports import ImportPreview, voucher_import_commit, voucher_import_validate

# Row errors printed by the command; the rest are counted.
PRINTED_ERRORS = 20
# Print a progress line every this many rows (only files this large show progress).
PROGRESS_EVERY = 10_000


class Command(BaseCommand):
    help = (
        "Import voucher codes for a product from a UTF-8 CSV file with the header "
        + ", ".join(CSV_COLUMNS)
        + ". Validates every row first and imports all rows or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("product_id", type=int, help="Id of the product the codes are for.")
        parser.add_argument("file", type=Path, help="The CSV file.")
        parser.add_argument(
            "--yes", action="store_true", help="Import without asking for confirmation."
        )
        parser.add_argument(
            "--user", default="", help="Staff username recorded as the uploader (optional)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        actor = self._actor(options["user"])
        try:
            with _open(path) as stream:
                preview = voucher_import_validate(
                    product_id=options["product_id"],
                    stream=stream,
                    file_name=path.name,
                    actor=actor,
                )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self._print_preview(preview)
        if not preview.is_valid:
            self._print_errors(preview.errors, preview.error_count)
            reason = preview.file_error or f"{preview.error_count} row(s) have errors"
            raise CommandError(f"The file is invalid ({reason}); nothing was imported.")
        if not self._confirmed(preview, assume_yes=options["yes"]):
            return

        total = preview.row_count
        next_report = PROGRESS_EVERY

        def progress(rows_done: int) -> None:
            nonlocal next_report
            if rows_done >= next_report and rows_done < total:
                self.stdout.write(f"  {rows_done:,} / {total:,} rows")
                next_report = (rows_done // PROGRESS_EVERY + 1) * PROGRESS_EVERY

        try:
            with _open(path) as stream:
                batch = voucher_import_commit(
                    batch_id=preview.batch_id, stream=stream, actor=actor, progress=progress
                )
        except VoucherImportRejected as exc:
            self._print_errors([RowError(**e) for e in exc.errors], exc.error_count)
            raise CommandError(exc.message) from None
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(f"Imported {batch.imported_count:,} voucher(s) in batch {batch.pk}.")
        )

    def _actor(self, username: str) -> Actor:
        if not username:
            return Actor.system(f"cli:{getpass.getuser()}")
        user = get_user_model().objects.filter(username=username, is_staff=True).first()
        if user is None:
            raise CommandError(f"No staff user named {username!r}.")
        return Actor.for_user(user, user_agent="manage.py import_vouchers")

    def _print_preview(self, preview: ImportPreview) -> None:
        self.stdout.write(f"File:    {preview.file_name} (sha256 {preview.file_sha256})")
        self.stdout.write(f"Batch:   {preview.batch_id}")
        self.stdout.write(
            f"Rows:    {preview.row_count:,} ({preview.valid_count:,} valid, "
            f"{preview.error_count:,} with errors)"
        )
        for denomination, count in preview.denominations.items():
            self.stdout.write(f"  {denomination:>12}: {count:,}")

    def _print_errors(self, errors: list[RowError], total: int) -> None:
        for error in errors[:PRINTED_ERRORS]:
            self.stderr.write(f"  row {error.row}: {error.reason}")
        if total > PRINTED_ERRORS:
            self.stderr.write(f"  … and {total - PRINTED_ERRORS:,} more row(s) with errors")

    def _confirmed(self, preview: ImportPreview, *, assume_yes: bool) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            raise CommandError(
                f"Validated batch {preview.batch_id}; nothing imported. "
                "Run again with --yes to import without a terminal."
            )
        answer = input(f"Import {preview.valid_count:,} voucher(s)? [y/N] ")
        if answer.strip().lower() in ("y", "yes"):
            return True
        self.stdout.write("Nothing imported.")
        return False


def _open(path: Path) -> TextIO:
    # utf-8-sig drops the byte-order mark spreadsheet programs put first;
    # newline="" is what the csv module needs for quoted line breaks.
    return path.open(encoding="utf-8-sig", newline="")
