"""The application's database role owns no tables: `migrate` (run as the owner) grants it DML.

On PostgreSQL, with DATABASE_APP_ROLE set, every `migrate` ends by granting that
role SELECT, INSERT, UPDATE and DELETE on every table and sequence of the schema,
except the audit trail, where it gets SELECT, INSERT and UPDATE of the seal's
columns only (seq, prev_hash, hash, sealed_at: the sealer's UPDATE, which the
table's trigger further allows once per event). Not being the owner, the role
can never ALTER, DISABLE TRIGGER or TRUNCATE a table.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger(__name__)
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
APPEND_ONLY_TABLES = ("orders_auditevent",)
# The only columns of an append-only table the role may UPDATE (the seal).
SEAL_COLUMNS = {"orders_auditevent": ("seq", "prev_hash", "hash", "sealed_at")}


def app_role_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Give `role` the DML the application needs, and nothing that could erase the trail."""
    if not ROLE_NAME.match(role):
        raise ImproperlyConfigured(f"DATABASE_APP_ROLE {role!r} is not a plain role name.")
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        user, schema = cursor.fetchone()
        if user == role:  # e.g. a test's flush: the role cannot grant to itself
            logger.info("not granting: connected as DATABASE_APP_ROLE %s itself.", role)
            return
        schema, role = connection.ops.quote_name(schema), connection.ops.quote_name(role)
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
        )
        for table in APPEND_ONLY_TABLES:
            cursor.execute(f"REVOKE UPDATE, DELETE ON {schema}.{table} FROM {role}")
            columns = SEAL_COLUMNS.get(table, ())
            cursor.execute(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s"
                " AND column_name = ANY(%s)",
                [table, list(columns)],
            )
            if columns and cursor.fetchone()[0] == len(columns):  # not before migration 0010
                names = ", ".join(connection.ops.quote_name(c) for c in columns)
                cursor.execute(f"GRANT UPDATE ({names}) ON {schema}.{table} TO {role}")
        cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")


def grant_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate receiver: grants to DATABASE_APP_ROLE on PostgreSQL."""
    if settings.DATABASE_APP_ROLE and connections[using].vendor == "postgresql":
        app_role_grant(role=settings.DATABASE_APP_ROLE, using=using)
