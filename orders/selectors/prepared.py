"""Querysets compiled once and run many times with new values.

The hottest reads (the API's order detail, placing's replay check) are one
short statement each, yet Django spends longer building their SQL from the
queryset (resolving joins and columns) than the database spends answering.
A `Prepared` keeps the ORM as the one description of such a query: it builds
the queryset with stand-in values, compiles it once per database connection
and remembers where each stand-in sits among the parameters; a run puts the
real values in those places, executes the SQL and converts the rows exactly as
`values_list()` would (Django's own converters: sealed secrets, decimals,
SQLite's datetimes).

Only plain values go through a stand-in (ids, a bound, a code): each must
reach the SQL as one parameter of its own, which `Prepared` checks when it
compiles. A stand-in is a number; a text column receives it as its digits.
`instances()` makes model objects of a query that selects `columns(Model)`,
as a queryset would (`Model.from_db`).

On PostgreSQL the statement is also prepared on the server, once per
connection (`statement_cursor`, which audit inserts use too): planning the
order read's joins costs the server several times what running it does.
Settings turn this on with the connection's `prepare_threshold` (see
DATABASE_PREPARED_STATEMENTS); without it these are ordinary statements.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler

# Stand-ins, one per name: 1,987,000,001 and on. Positive and within a 32-bit
# column, so Django compiles each lookup as it would a real value (it drops a
# lookup on a value out of the column's range as matching nothing).
_STAND_IN_BASE = 1_987_000_000


_NUMBERS = itertools.count(1)


class _Statement:
    """What Django's query log reads of a psycopg cursor (`cursor._query.query`)."""

    __slots__ = ("query",)

    def __init__(self, query: bytes) -> None:
        self.query = query


class PreparingCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """Binds parameters on the server and asks for every statement to be prepared
    (psycopg prepares it on the connection unless its prepare_threshold is None).
    Django's query log shows its statements with placeholders, not values."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", True)
        result = super().execute(query, params, **kwargs)
        # psycopg keeps no query of a prepared statement's run; the log gets the text.
        self._query = _Statement(query.encode() if isinstance(query, str) else query)  # type: ignore[assignment]
        return result


@contextmanager
def statement_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor for a statement run many times with new values: on PostgreSQL
    with prepared statements configured, one that prepares it (once per
    connection); otherwise the connection's usual cursor. Wrapped as Django
    wraps its own: it runs in the connection's transaction and is counted in
    its query log (the query-count guards see it)."""
    if connection.vendor != "postgresql" or (
        connection.settings_dict["OPTIONS"].get("prepare_threshold") is None
    ):
        with connection.cursor() as cursor:
            yield cursor
        return
    # As Django's own cursor() does: with CONN_HEALTH_CHECKS, a connection the
    # server dropped since the last request is replaced before it is used.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    # Django's own wrapping of a new cursor (not in its stubs): debug log included.
    with connection._prepare_cursor(PreparingCursor(connection.connection)) as cursor:  # type: ignore[attr-defined]
        yield cursor


def columns(model: type[Model]) -> tuple[str, ...]:
    """Every concrete column of `model` (attnames), in field order: what
    `Model.from_db` takes."""
    return tuple(field.attname for field in model._meta.concrete_fields)


class Prepared:
    """`build(**stand_ins)` -> a values_list() queryset; `rows(**values)` runs it."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *names: str) -> None:
        self._build = build
        self._names = names
        self._attr = f"_prepared_{next(_NUMBERS)}"  # this query's slot on a connection

    def _compiled(self, alias: str) -> tuple[SQLCompiler, str, list[Any], list[int]]:
        connection = connections[alias]
        compiled = connection.__dict__.get(self._attr)
        if compiled is None:
            stand_ins = {name: _STAND_IN_BASE + n for n, name in enumerate(self._names, 1)}
            queryset = self._build(**stand_ins)
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            params = list(params)
            places = []
            for name, value in stand_ins.items():
                found = [n for n, param in enumerate(params) if param in (value, str(value))]
                if len(found) != 1:
                    raise ValueError(f"{name!r} is {len(found)} parameters of the query, not 1")
                places.append(found[0])
            compiled = (compiler, sql, params, places)
            connection.__dict__[self._attr] = compiled
        return compiled

    def rows(self, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[tuple[Any, ...]]:
        """The query's rows for `values` (one per name), converted as values_list()."""
        compiler, sql, template, places = self._compiled(using)
        params = list(template)
        for name, place in zip(self._names, places, strict=True):
            params[place] = values[name]
        with statement_cursor(compiler.connection) as cursor:
            cursor.execute(sql, params)
            fetched: Sequence[Any] = cursor.fetchall()
        if compiler.has_extra_select:  # ordering columns past the selected ones
            fetched = [row[: compiler.col_count] for row in fetched]
        return list(compiler.results_iter([fetched], tuple_expected=True))  # type: ignore[arg-type, list-item]

    def instances[M: Model](
        self, model: type[M], using: str = DEFAULT_DB_ALIAS, **values: Any
    ) -> list[M]:
        """The rows as `model` objects: the query selects `columns(model)`."""
        names = list(columns(model))
        return [model.from_db(using, names, list(row)) for row in self.rows(using, **values)]
