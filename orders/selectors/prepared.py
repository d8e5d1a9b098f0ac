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

Only plain values go through a stand-in (ids, a bound): each must reach the
SQL as one parameter of its own, which `Prepared` checks when it compiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

# Stand-ins, one per name: 1,987,000,001 and on. Positive and within a 32-bit
# column, so Django compiles each lookup as it would a real value (it drops a
# lookup on a value out of the column's range as matching nothing).
_STAND_IN_BASE = 1_987_000_000


class Prepared:
    """`build(**stand_ins)` -> a values_list() queryset; `rows(**values)` runs it."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *names: str) -> None:
        self._build = build
        self._names = names
        self._attr = f"_prepared_{id(self)}"

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
                found = [n for n, param in enumerate(params) if param == value]
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
        with compiler.connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched: Sequence[Any] = cursor.fetchall()
        if compiler.has_extra_select:  # ordering columns past the selected ones
            fetched = [row[: compiler.col_count] for row in fetched]
        return list(compiler.results_iter([fetched], tuple_expected=True))
