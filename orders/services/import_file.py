"""The voucher import file: its format, the check of each row, and one scan.

`ImportScan` reads a file once through `csv.reader` (memory grows only with
one fingerprint per row, never with the file), hashes its text and detects
duplicates by the keyed fingerprint, inside the file and against the
product's stock, without decrypting anything. Row errors name the
spreadsheet row (header = row 1) and the problem, never the cell's value:
the values are secrets.

File format (header required, columns in any order, names in any case):
card_number, pin_code, voucher_reference_number, claim_url, expires_at,
denomination. Cells are trimmed. Rows whose cells are all blank are skipped.
- CODE_WITH_PIN products: card_number (4-64 letters, digits, dashes, spaces)
  and pin_code (3-16 letters or digits) are required.
- URL products: claim_url (an https URL) is required; card_number and
  pin_code are optional, checked as above when present.
- voucher_reference_number: optional, at most 128 printable characters.
- denomination: one of the product's values (or inside its range), written
  with at most two decimals ("25", "25.5", "25.00").
- expires_at: an ISO 8601 date (= the end of that day, UTC) or datetime
  (without an offset = UTC), in the future. Blank means the code does not
  expire: many gift cards never do, and fulfilment already treats a missing
  expiry as "never".
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from orders.enums import DeliveryType
from orders.models import Product, Voucher
from orders.rules import AMOUNT_RE, cents, file_importable, is_expired
from orders.services.inventory import voucher_fingerprint

CSV_COLUMNS = (
    "card_number",
    "pin_code",
    "voucher_reference_number",
    "claim_url",
    "expires_at",
    "denomination",
)
# Rows per duplicate lookup, per INSERT and per progress report.
CHUNK_SIZE = 1000
# Row errors kept for the preview (the smallest row numbers); the total is always counted.
SHOWN_ERRORS = 200

_CARD_NUMBER = re.compile(r"[A-Za-z0-9 -]{4,64}")
_PIN = re.compile(r"[A-Za-z0-9]{3,16}")
_HTTPS_URL = URLValidator(schemes=["https"])
_MAX_URL = 2000
_MAX_REFERENCE = 128


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad row: its spreadsheet row number (header = 1) and what is wrong."""

    row: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


@dataclass(slots=True)
class ImportRow:
    """One valid row. Holds plaintext until its chunk is inserted; never printed."""

    row: int
    denomination: Decimal
    expires_at: datetime | None
    fingerprint: str
    card_last4: str
    card_number: str = field(repr=False)
    pin_code: str = field(repr=False)
    reference: str = field(repr=False)
    claim_url: str = field(repr=False)


class _FileProblem(Exception):
    """The file as a whole cannot be read (header, encoding, CSV syntax)."""


class ImportScan:
    """Reads an import file once: validates each row, hashes the text, counts."""

    def __init__(self, *, product: Product) -> None:
        self.product = product
        self.url_product = product.delivery_type == DeliveryType.URL
        self.now = timezone.now()
        self.allowed = set(product.denomination_list)
        self.low, self.high = product.min_denomination, product.max_denomination
        self.row_count = 0
        self.valid_count = 0
        self.error_count = 0
        self.file_error = ""
        self.hash_complete = True
        self.denominations: Counter[Decimal] = Counter()
        self._sha = hashlib.sha256()
        self._errors: list[RowError] = []
        # fingerprint -> first row holding it: "same code as row 17".
        self._seen: dict[str, int] = {}
        self._amounts: dict[str, Decimal | str] = {}
        self._expiries: dict[str, datetime | None | str] = {}

    # --- results ---

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def errors(self) -> list[RowError]:
        return sorted(self._errors, key=lambda e: e.row)[:SHOWN_ERRORS]

    @property
    def ok(self) -> bool:
        return file_importable(
            file_error=self.file_error, error_count=self.error_count, row_count=self.row_count
        )

    def summary(self) -> str:
        if self.file_error:
            return self.file_error
        shown = "; ".join(f"row {e.row}: {e.reason}" for e in self.errors[:5])
        return f"{self.error_count} row(s) with errors: {shown}"[:500]

    # --- reading ---

    def chunks(self, stream: Iterable[str]) -> Iterator[list[ImportRow]]:
        """Valid rows not yet in stock, in chunks; sets file_error instead of raising."""
        lines = self._hashed(stream)
        try:
            yield from self._read(lines)
        except _FileProblem as problem:
            self.file_error = str(problem)
            self._drain(lines)
        except csv.Error as exc:
            self.file_error = f"The file is not valid CSV near row {self.row_count + 2}: {exc}."
            self._drain(lines)
        except UnicodeDecodeError:
            self.file_error = "The file is not UTF-8 text; save it as CSV UTF-8 and upload again."
            self.hash_complete = False

    def _hashed(self, stream: Iterable[str]) -> Iterator[str]:
        # The hash is of the text as UTF-8: the same file always hashes the same.
        update = self._sha.update
        for line in stream:
            update(line.encode())
            yield line

    def _drain(self, lines: Iterator[str]) -> None:
        try:
            for _ in lines:
                pass
        except UnicodeDecodeError:
            self.hash_complete = False

    def _read(self, lines: Iterator[str]) -> Iterator[list[ImportRow]]:
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            raise _FileProblem(
                "The file is empty; it needs a header row: " + ", ".join(CSV_COLUMNS) + "."
            )
        index = self._columns(header)
        width = len(header)
        pending: list[ImportRow] = []
        for row_number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            self.row_count += 1
            # Spreadsheets pad rows with empty cells; only content beyond the header counts.
            if len(cells) < width or any(cell.strip() for cell in cells[width:]):
                self._error(row_number, f"has {len(cells)} cells; the header has {width}")
                continue
            parsed = self._row(row_number, [cells[i].strip() for i in index])
            if parsed is not None:
                pending.append(parsed)
            if len(pending) >= CHUNK_SIZE:
                yield self._not_in_stock(pending)
                pending = []
        if pending:
            yield self._not_in_stock(pending)
        if self.row_count == 0:
            raise _FileProblem("The file has a header row but no voucher rows.")

    def _columns(self, header: list[str]) -> list[int]:
        names = [name.strip().lstrip("\ufeff").strip().lower() for name in header]
        if not set(names) & set(CSV_COLUMNS):
            # Probably a data row: never echo it, its cells are codes and PINs.
            raise _FileProblem(
                "The first row must be the header row: " + ", ".join(CSV_COLUMNS) + "."
            )
        missing = [c for c in CSV_COLUMNS if c not in names]
        extra = sorted({n[:40] or "(blank)" for n in names if n not in CSV_COLUMNS})
        repeated = sorted({n for n in names if n in CSV_COLUMNS and names.count(n) > 1})
        problems = []
        if missing:
            problems.append("missing column(s): " + ", ".join(missing))
        if extra:
            problems.append("unexpected column(s): " + ", ".join(extra))
        if repeated:
            problems.append("repeated column(s): " + ", ".join(repeated))
        if problems:
            raise _FileProblem(
                "The header row is wrong ("
                + "; ".join(problems)
                + "). Expected exactly: "
                + ", ".join(CSV_COLUMNS)
                + "."
            )
        return [names.index(c) for c in CSV_COLUMNS]

    def _error(self, row: int, reason: str) -> None:
        self.error_count += 1
        self._errors.append(RowError(row=row, reason=reason))
        if len(self._errors) > 2 * SHOWN_ERRORS:
            # Duplicates found against stock arrive a chunk late: keep the lowest rows.
            self._errors = self.errors

    def _row(self, row: int, cells: list[str]) -> ImportRow | None:
        card, pin, reference, url, expires_raw, amount_raw = cells
        problems: list[str] = []
        card_ok = False
        if card:
            normalised = "".join(card.split()).replace("-", "")
            card_ok = bool(_CARD_NUMBER.fullmatch(card)) and len(normalised) >= 4
            if not card_ok:
                problems.append("card_number must be 4-64 letters, digits, dashes or spaces")
        elif not self.url_product:
            problems.append("card_number is required")
        if pin:
            if not _PIN.fullmatch(pin):
                problems.append("pin_code must be 3-16 letters or digits")
        elif not self.url_product:
            problems.append("pin_code is required")
        url_ok = False
        if url:
            url_ok = _is_https_url(url)
            if not url_ok:
                problems.append("claim_url must be a valid https:// URL")
        elif self.url_product:
            problems.append("claim_url is required")
        if reference and (len(reference) > _MAX_REFERENCE or not reference.isprintable()):
            problems.append(
                f"voucher_reference_number must be at most {_MAX_REFERENCE} printable characters"
            )
        denomination = self._denomination(amount_raw)
        if isinstance(denomination, str):
            problems.append(denomination)
        expires_at = self._expiry(expires_raw)
        if isinstance(expires_at, str):
            problems.append(expires_at)

        fingerprint = ""
        if url_ok if self.url_product else card_ok:
            fingerprint = voucher_fingerprint(
                delivery_type=self.product.delivery_type, card_number=card, claim_url=url
            )
            first = self._seen.setdefault(fingerprint, row)
            if first != row:
                problems.append(f"same code as row {first}")
        if problems:
            self._error(row, "; ".join(problems))
            return None
        assert isinstance(denomination, Decimal) and not isinstance(expires_at, str)
        digits = "".join(card.split()).replace("-", "")
        return ImportRow(
            row=row,
            denomination=denomination,
            expires_at=expires_at,
            fingerprint=fingerprint,
            card_last4=digits[-4:],
            card_number=card,
            pin_code=pin,
            reference=reference,
            claim_url=url,
        )

    def _denomination(self, raw: str) -> Decimal | str:
        cached = self._amounts.get(raw)
        if cached is None:
            cached = self._parse_denomination(raw)
            if len(self._amounts) < 10_000:
                self._amounts[raw] = cached
        return cached

    def _parse_denomination(self, raw: str) -> Decimal | str:
        if not raw:
            return "denomination is required"
        if not AMOUNT_RE.fullmatch(raw):
            return "denomination must be a number with at most two decimals, e.g. 25.00"
        value = cents(Decimal(raw))
        if self.low is not None and self.high is not None:
            if not self.low <= value <= self.high:
                return f"denomination {value} is outside {self.low}-{self.high}"
        elif value not in self.allowed:
            allowed = ", ".join(str(v) for v in sorted(self.allowed))
            return f"denomination {value} is not offered (allowed: {allowed})"
        return value

    def _expiry(self, raw: str) -> datetime | None | str:
        if raw in self._expiries:
            return self._expiries[raw]
        value = self._parse_expiry(raw)
        if len(self._expiries) < 10_000:
            self._expiries[raw] = value
        return value

    def _parse_expiry(self, raw: str) -> datetime | None | str:
        if not raw:
            return None
        try:
            day = parse_date(raw)
            moment = datetime.combine(day, time.max, tzinfo=UTC) if day else parse_datetime(raw)
        except ValueError:
            moment = None
        if moment is None:
            return "expires_at must be an ISO 8601 date or datetime, e.g. 2027-12-31"
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=UTC)
        if is_expired(moment, now=self.now):
            return "expires_at is in the past"
        return moment

    def _not_in_stock(self, rows: list[ImportRow]) -> list[ImportRow]:
        in_stock = set(
            Voucher.objects.filter(
                product_id=self.product.pk, fingerprint__in=[r.fingerprint for r in rows]
            ).values_list("fingerprint", flat=True)
        )
        fresh = []
        for row in rows:
            if row.fingerprint in in_stock:
                self._error(row.row, "this code is already in this product's inventory")
            else:
                fresh.append(row)
                self.denominations[row.denomination] += 1
        self.valid_count += len(fresh)
        return fresh


def _is_https_url(value: str) -> bool:
    if len(value) > _MAX_URL:
        return False
    try:
        _HTTPS_URL(value)
    except ValidationError:
        return False
    return True
