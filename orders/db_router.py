"""The read replica: the dashboard's heavy reads on it, everything else on the primary.

With DATABASE_REPLICA_URL set, settings define the "replica" alias and name it
in DATABASE_REPLICA_ALIAS. Only code running inside `reads_from_replica()` (the
dashboard's list pages, the overview and the CSV exports) reads from it, and
then only the `orders` app's models, and only outside a transaction on the
primary. Every write, every read in a transaction (it decides a write), every
read of a user, a session, a content type or a task, and every read outside
the scope stays on "default". A replica lags its primary: what a list shows may
be that much behind, never what a detail page or an action reads.
docs/decisions/0010-read-replica.md says why a scope and not a library that
sends every read to the replica.

Without a replica (DATABASE_REPLICA_ALIAS empty) the router has no opinion on
reads, writes or relations, and Django routes exactly as it would without it;
migrations run on "default" only, with or without a replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

# The only app whose tables the replica serves: auth, sessions, contenttypes,
# admin, axes and the task queue are read where they are written, so a session
# or a user saved a moment ago is never looked up on a replica that lags.
REPLICA_APPS = frozenset({"orders"})

_in_scope: ContextVar[bool] = ContextVar("reads_from_replica", default=False)


def replica_alias() -> str:
    """The configured replica's alias; "" when there is none."""
    return str(getattr(settings, "DATABASE_REPLICA_ALIAS", ""))


@contextmanager
def reads_from_replica() -> Iterator[None]:
    """Reads of `orders` models in the block (or the decorated view) may go to the
    replica. As a decorator: `@reads_from_replica()`, on views whose reads decide
    no write."""
    token = _in_scope.set(True)
    try:
        yield
    finally:
        _in_scope.reset(token)


class ReplicaRouter:
    """Routes reads inside `reads_from_replica()` to the replica; nothing else."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        replica = replica_alias()
        if not replica:
            return None
        # A transaction open on the primary is one whose reads decide its writes.
        if (
            _in_scope.get()
            and model._meta.app_label in REPLICA_APPS
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return replica
        # Explicit: an object loaded from the replica must not drag a later read of
        # its relations there (Django's fallback is the instance's own database).
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        # Saving an object read from the replica writes the primary.
        return DEFAULT_DB_ALIAS if replica_alias() else None

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        replica = replica_alias()
        if not replica:
            return None
        same_data = {DEFAULT_DB_ALIAS, replica}
        return True if {obj1._state.db, obj2._state.db} <= same_data else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # Migrations run on the primary only; the replica receives the schema
        # through replication. Also keeps the system checks that ask a database
        # about its features (`check`, `run_checks()`) off any other alias.
        return None if db == DEFAULT_DB_ALIAS else False
