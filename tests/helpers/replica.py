"""Which database a piece of code read: the primary ("default") or the read replica.

The "replica" alias of the test settings is a mirror of the default database;
a test that names it (`databases=["default", "replica"]`, transactional) turns
the router on with `settings.DATABASE_REPLICA_ALIAS = "replica"`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext

from tests.helpers.transactions import shape_of

REPLICA = "replica"
# A server-side cursor (an export's rows on PostgreSQL) is logged as its DECLARE.
_DECLARE_RE = re.compile(r"^\s*DECLARE\s+\S+\s+.*?\bFOR\s+", re.IGNORECASE | re.DOTALL)


def _shape(sql: str) -> tuple[str, str]:
    return shape_of(_DECLARE_RE.sub("", sql, count=1))


@dataclass
class Queries:
    """The statements each connection ran in the block."""

    primary: CaptureQueriesContext
    replica: CaptureQueriesContext

    @staticmethod
    def _tables(captured: CaptureQueriesContext, verbs: tuple[str, ...]) -> set[str]:
        shapes = (_shape(query["sql"]) for query in captured.captured_queries)
        return {table for verb, table in shapes if verb in verbs}

    def read_on_primary(self) -> set[str]:
        """The first table of every SELECT run on the primary."""
        return self._tables(self.primary, ("SELECT",))

    def read_on_replica(self) -> set[str]:
        """The first table of every SELECT run on the replica."""
        return self._tables(self.replica, ("SELECT",))

    def written_on_primary(self) -> set[str]:
        return self._tables(self.primary, ("INSERT", "UPDATE", "DELETE"))

    @property
    def replica_statements(self) -> list[str]:
        return [query["sql"] for query in self.replica.captured_queries]


@contextmanager
def queries() -> Iterator[Queries]:
    """Capture the statements of the primary and of the replica in the block."""
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as replica,
    ):
        yield Queries(primary=primary, replica=replica)


def orders_tables(tables: set[str]) -> set[str]:
    """The tables of the `orders` app among `tables`."""
    return {table for table in tables if table.startswith("orders_")}
