"""The CSV export engine: stream a queryset's columns as CSV cells, safe to open
in a spreadsheet, and the column lists of the dashboard's exports.

An export reads `values_list()` tuples of exactly its columns through a
server-side cursor, never model instances: building an Order and its joined
Client per row cost many times what the database spends on the query. The
cells are written in batches, so the response yields a few hundred kilobytes
at a time instead of one line per row.

Formula injection (OWASP "CSV Injection"): a text cell starting with = + - @,
a tab or a carriage return is run by a spreadsheet as a formula, so it gets a
leading ' and opens as text. A plain number ("-10.00") is left alone, and so
are money, integer and timestamp columns, so finance's sums still work. On
PostgreSQL the database does this in the same SELECT; elsewhere Python does.

Only the dashboard exports, and what it sends is an HTTP response; the column
lists say what each download contains, the views in `finance.py` which rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import batched
from typing import Any, cast

from django.db import connections
from django.db.models import (
    CharField,
    DateTimeField,
    DecimalField,
    F,
    Field,
    Func,
    QuerySet,
    TextField,
)
from django.http import HttpResponse, StreamingHttpResponse

EXPORT_CHUNK_SIZE = 2000  # rows per server-side cursor fetch and per yielded batch


def csv_response(filename: str, header: list[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """Stream `rows` as CSV. The csv writer leaves None an empty cell and writes
    anything else not a string (int, Decimal) with str(), so 12.50 is "12.50"."""

    def batches() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield buffer.getvalue()
        for batch in batched(rows, EXPORT_CHUNK_SIZE):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(batch)
            yield buffer.getvalue()

    response = StreamingHttpResponse(batches(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    # permission_for is typed for HttpResponse; Django serves both kinds alike.
    return cast(HttpResponse, response)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def csv_safe(value: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    if value[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class _PgCsvText(Func):
    """csv_safe() in SQL for a plain column: one ascii() test per cell, the regex
    only for the rare cell that starts like a formula."""

    template = (
        "CASE WHEN ascii(%(expressions)s) NOT IN (61, 43, 45, 64, 9, 13) THEN %(expressions)s"
        " WHEN %(expressions)s ~ '^[+-]?[0-9]+([.][0-9]+)?$' THEN %(expressions)s"
        " ELSE '''' || %(expressions)s END"
    )
    output_field = TextField()


class _PgCsvTextOnce(Func):
    """csv_safe() in SQL naming its argument once, for an annotation (a subquery),
    which the CASE above would run up to four times per row."""

    template = (
        r"regexp_replace(%(expressions)s, '^(?=[-=+@\t\r])(?![+-]?[0-9]+([.][0-9]+)?$)', '''')"
    )
    output_field = TextField()


class _PgMoneyText(Func):
    """A numeric as PostgreSQL prints it, the very text psycopg builds the Decimal
    from, so it is what str() of that Decimal gives: "12.50"."""

    template = "(%(expressions)s)::text"
    output_field = TextField()


class _PgIsoText(Func):
    """A timestamptz as datetime.isoformat() prints it in the session's time zone
    (the one Django gives the datetimes it loads): "2025-01-31T09:05:00.250000+00:00",
    and without the fraction when the microseconds are zero."""

    # ".000000" can only be the fraction: no other part of the pattern has a dot.
    template = (
        "replace(to_char(%(expressions)s, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'), '.000000', '')"
    )
    output_field = TextField()


def _column_field(qs: QuerySet[Any], name: str) -> Field[Any, Any]:
    """The model field or annotation behind `name` (which may follow relations)."""
    if name in qs.query.annotations:
        return cast(Field[Any, Any], qs.query.annotations[name].output_field)
    model: Any = qs.model
    *path, last = name.split("__")
    for step in path:
        model = model._meta.get_field(step).related_model
    return cast(Field[Any, Any], model._meta.get_field(last))


def _is_free_text(field: Field[Any, Any]) -> bool:
    # Choice columns (status, kind, decision) only ever hold our own enum values.
    return isinstance(field, (CharField, TextField)) and not field.choices


def export_rows(qs: QuerySet[Any], fields: list[str]) -> Iterator[Sequence[Any]]:
    """The cells of `fields` for every row of `qs`, streamed by a server-side cursor:
    money as str(Decimal), timestamps as isoformat(), NULL as None (an empty cell),
    free text through csv_safe().

    On PostgreSQL the database renders money, timestamps and safe text as that same
    text, so the rows go from the cursor to the csv writer with no Python step per
    row; elsewhere (SQLite) Python formats the timestamps and the text.
    """
    # The rows are read while the response streams, after the view returned and
    # its `reads_from_replica()` scope closed: the database is chosen now.
    qs = qs.using(qs.db)
    kinds = {name: _column_field(qs, name) for name in fields}
    timestamps = {name for name, field in kinds.items() if isinstance(field, DateTimeField)}
    texts = {name for name, field in kinds.items() if _is_free_text(field)}
    if connections[qs.db].vendor == "postgresql":
        columns: list[Any] = []
        for name in fields:
            if name in timestamps:
                columns.append(_PgIsoText(F(name)))
            elif isinstance(kinds[name], DecimalField):
                columns.append(_PgMoneyText(F(name)))
            elif name in texts:
                once = name in qs.query.annotations
                columns.append(_PgCsvTextOnce(F(name)) if once else _PgCsvText(F(name)))
            else:
                columns.append(name)
        return qs.values_list(*columns).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    stamp_at = [i for i, name in enumerate(fields) if name in timestamps]
    text_at = [i for i, name in enumerate(fields) if name in texts]
    rows = qs.values_list(*fields).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    return (_python_cells(row, stamp_at, text_at) for row in rows)


def _python_cells(row: tuple[Any, ...], stamp_at: list[int], text_at: list[int]) -> list[Any]:
    cells = list(row)
    for i in stamp_at:
        if cells[i] is not None:
            cells[i] = cells[i].isoformat()
    for i in text_at:
        if cells[i]:
            cells[i] = csv_safe(cells[i])
    return cells


# --- Column lists ----------------------------------------------------------------

# (CSV header, queryset field) in column order; only these columns are ever read.
ORDER_EXPORT = [
    ("id", "id"),
    ("reference_code", "reference_code"),
    ("client", "client__name"),
    ("product", "product_name"),
    ("status", "status"),
    ("sub_status", "sub_status"),
    ("currency", "currency"),
    ("denomination", "denomination"),
    ("quantity", "quantity"),
    ("amount", "amount"),
    ("wallet_currency", "wallet_currency"),
    ("wallet_amount", "wallet_amount"),
    ("refund_status", "refund_status"),
    ("refund_amount", "refund_amount"),
    ("customer_email", "customer_email"),
    ("placed_at", "placed_at"),
    ("delivered_at", "delivered_at"),
    ("refunded_at", "refunded_at"),
]
ORDER_COLUMNS = [column for column, _field in ORDER_EXPORT]
ORDER_FIELDS = [field for _column, field in ORDER_EXPORT]

# The refund export is the order export plus the latest review (annotations of the queue).
REFUND_REVIEW_FIELDS = ["latest_decision", "latest_reviewer", "latest_review_at"]
REFUND_EXPORT = [*ORDER_EXPORT, *((field, field) for field in REFUND_REVIEW_FIELDS)]

LEDGER_EXPORT = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("kind", "kind"),
    ("amount", "amount"),
    ("balance_after", "balance_after"),
    ("order_id", "order_id"),
    ("note", "note"),
    ("actor", "actor_label"),
]


def csv_export(filename: str, columns: list[tuple[str, str]], qs: QuerySet[Any]) -> HttpResponse:
    """The download `filename`: one CSV row per row of `qs`, with the (header, field)
    `columns`, streamed."""
    header = [column for column, _field in columns]
    fields = [field for _column, field in columns]
    return csv_response(filename, header, export_rows(qs, fields))
