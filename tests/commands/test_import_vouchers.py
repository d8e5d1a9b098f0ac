"""manage.py import_vouchers: preview, confirmation, row errors and exit codes."""

from __future__ import annotations

import io
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from orders.enums import ImportBatchStatus
from orders.management.commands import import_vouchers
from orders.models import ImportBatch, Voucher
from orders.services.import_file import CSV_COLUMNS
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def _write(tmp_path: Path, rows: list[str], name: str = "codes.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([",".join(CSV_COLUMNS), *rows]) + "\n", encoding="utf-8")
    return path


def _rows(n: int, *, denomination: str = "25.00", prefix: str = "GC") -> list[str]:
    return [f"{prefix}-{i:08d},{i % 10000:04d},,,2099-12-31,{denomination}" for i in range(n)]


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_vouchers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def product():
    return ProductFactory(denominations=["10.00", "25.00"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_yes_imports_after_printing_the_preview(product, tmp_path):
    path = _write(tmp_path, _rows(3) + _rows(2, denomination="10", prefix="TN"))

    out, err = _run(str(product.pk), str(path), "--yes")

    assert "Rows:    5 (5 valid, 0 with errors)" in out
    assert "10.00: 2" in out and "25.00: 3" in out
    assert "Imported 5 voucher(s)" in out
    assert err == ""
    assert Voucher.objects.filter(product=product).count() == 5
    assert Voucher.objects.filter(denomination=Decimal("10.00")).count() == 2


def test_an_invalid_file_lists_row_errors_and_imports_nothing(product, tmp_path):
    rows = _rows(4)
    rows[1] = "GC-X,12,,,2099-12-31,25.00"
    rows[3] = "GC-00000009,1234,,,2001-01-01,30"
    path = _write(tmp_path, rows)
    out, err = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError, match=r"2 row\(s\) have errors\); nothing was imported"):
        call_command("import_vouchers", str(product.pk), str(path), "--yes", stdout=out, stderr=err)

    lines = err.getvalue().splitlines()
    assert lines[0].startswith("  row 3: card_number must be 4-64")
    assert "pin_code must be 3-16" in lines[0]
    assert lines[1].startswith("  row 5: ") and "expires_at is in the past" in lines[1]
    assert "GC-X" not in err.getvalue()
    assert Voucher.objects.count() == 0
    assert ImportBatch.objects.get().status == ImportBatchStatus.INVALID


def test_a_wrong_header_is_reported_as_such(product, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("card_number,pin_code,notes\nGC-0001,1234,x\n", encoding="utf-8")

    with pytest.raises(CommandError, match="header row is wrong") as wrong:
        _run(str(product.pk), str(path), "--yes")

    assert "missing column(s): voucher_reference_number, claim_url" in str(wrong.value)
    assert "unexpected column(s): notes" in str(wrong.value)


def test_without_yes_and_without_a_terminal_nothing_is_imported(product, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    path = _write(tmp_path, _rows(2))

    with pytest.raises(CommandError, match="Run again with --yes"):
        _run(str(product.pk), str(path))

    assert Voucher.objects.count() == 0


def test_on_a_terminal_it_asks_and_imports_on_yes(product, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    path = _write(tmp_path, _rows(2))

    out, _ = _run(str(product.pk), str(path))

    assert "Imported 2 voucher(s)" in out
    assert Voucher.objects.count() == 2


def test_on_a_terminal_declining_imports_nothing(product, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    path = _write(tmp_path, _rows(2))

    out, _ = _run(str(product.pk), str(path))

    assert "Nothing imported." in out
    assert Voucher.objects.count() == 0


def test_large_files_print_progress_lines(product, tmp_path, monkeypatch):
    monkeypatch.setattr(import_vouchers, "PROGRESS_EVERY", 1000)
    path = _write(tmp_path, _rows(2500))

    out, _ = _run(str(product.pk), str(path), "--yes")

    assert "  1,000 / 2,500 rows" in out
    assert "  2,000 / 2,500 rows" in out
    assert "Imported 2,500 voucher(s)" in out


def test_unknown_product_or_missing_file_is_an_error(product, tmp_path):
    path = _write(tmp_path, _rows(1))

    with pytest.raises(CommandError, match="No product with that id"):
        _run("999999", str(path), "--yes")
    with pytest.raises(CommandError, match="is not a file"):
        _run(str(product.pk), str(tmp_path / "missing.csv"), "--yes")


@pytest.mark.django_db(transaction=True)  # run_from_argv closes the connection when done
def test_exit_status_is_non_zero_when_invalid_and_zero_when_imported(product, tmp_path, capsys):
    bad = _write(tmp_path, ["GC-0001,1,,,2099-12-31,25"], name="bad.csv")
    good = _write(tmp_path, _rows(1), name="good.csv")

    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "import_vouchers", str(product.pk), str(bad)])
    assert exited.value.code == 1
    assert "row 2: pin_code must be 3-16" in capsys.readouterr().err

    execute_from_command_line(["manage.py", "import_vouchers", str(product.pk), str(good), "--yes"])
    assert Voucher.objects.count() == 1
