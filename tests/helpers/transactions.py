"""What a piece of code costs the database: its statements and its commits."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

# A statement's verb and first table; a WITH query is named by the write after it.
STATEMENT_RE = re.compile(
    r"^\s*(?:WITH\b.*?\)\s*(?=INSERT|UPDATE|DELETE))?"
    r'(SELECT\b.*?\bFROM|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?',
    re.IGNORECASE | re.DOTALL,
)
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Cost:
    """The statements sent (as run, in order) and the transactions committed.

    A commit is either the COMMIT that ends an outermost atomic block or a
    write run outside one, which the database commits on its own (autocommit).
    """

    statements: list[str] = field(default_factory=list)
    commits: int = 0

    def shape(self, *, without: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """(verb, table) of each statement, in order; tables in `without` left out."""
        return [shaped for shaped in map(shape_of, self.statements) if shaped[1] not in without]


def shape_of(sql: str) -> tuple[str, str]:
    """("INSERT", "orders_order") and the like; ("SAVEPOINT", "") for one without a table."""
    match = STATEMENT_RE.match(sql)
    if match is None:
        return sql.split(None, 1)[0].upper(), ""
    return match.group(1).split(None, 1)[0].upper(), match.group(2)


def is_write(sql: str) -> bool:
    return shape_of(sql)[0] in WRITES


@contextmanager
def database_cost(using: str = DEFAULT_DB_ALIAS) -> Iterator[Cost]:
    """Record every statement and every commit of connection `using` in the block."""
    connection = connections[using]
    cost = Cost()

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        cost.statements.append(sql)
        if is_write(sql) and connection.get_autocommit() and not connection.in_atomic_block:
            cost.commits += 1
        return execute(sql, params, many, context)

    commit = connection.commit

    def counted_commit() -> None:
        cost.commits += 1
        commit()

    connection.commit = counted_commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(record):
            yield cost
    finally:
        del connection.commit
