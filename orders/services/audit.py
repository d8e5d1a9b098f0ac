"""The only writer of AuditEvent, its sealer, and the verifier of its keyed hash chains.

`audit_record` is one INSERT of an unsealed event: no lock, no savepoint, so it
joins the caller's transaction or commits at once in autocommit. `audit_seal`
(the worker runs it every AUDIT_SEAL_SECONDS) links unsealed events into their
chain: each event's `hash` is an HMAC-SHA256, under the AUDIT_KEY key named by
its `key_id`, of its content and of the previous event's hash in its chain, so
without the key nobody can recompute a chain after changing an event. Sealers
lock a chain's head with SKIP LOCKED: several run at once on different chains.
After each sealed batch commits, its newest (database, chain, seq, hash) is
appended to AUDIT_CHECKPOINT_PATH and logged on "orders.audit.checkpoint",
outside the database: a wipe or a rollback to an older copy, consistent as its
chains may be, falls behind the newest checkpoint and `check_audit_chain`
reports it. Tamper evidence starts at sealing; until then the trigger alone
(PostgreSQL) keeps an event from being changed or removed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from orders.crypto import audit_keyring
from orders.models import AuditChainHead, AuditEvent
from orders.selectors.prepared import statement_cursor
from orders.services.actors import Actor

GENESIS = "0" * 64
SEAL_STATEMENT_ROWS = 2000  # rows per sealing UPDATE on SQLite (4 parameters each)
checkpoint_logger = logging.getLogger("orders.audit.checkpoint")
logger = logging.getLogger("orders.audit")


def _chain_for(*, order_id: int | None, voucher_id: int | None, actor: Actor) -> int:
    # Events of one order stay in one chain (readable in order); others spread out.
    n = max(1, settings.AUDIT_CHAINS)
    if order_id is not None:
        return order_id % n
    if voucher_id is not None:
        return voucher_id % n
    return secrets.randbelow(n)


# What `_digest` reads of an event: its content, key id and place in the chain.
_SEALED_FIELDS = (
    "id",
    "key_id",
    "chain",
    "seq",
    "prev_hash",
    "action",
    "actor_user_id",
    "actor_credential_id",
    "actor_label",
    "order_id",
    "voucher_id",
    "reason",
    "ip_address",
    "user_agent",
    "data",
    "created_at",
)


def _digest(event: Any) -> str | None:
    """The event's HMAC under its own key id; None when that key is not in AUDIT_KEY.
    `event` is an AuditEvent or a row with the attributes of _SEALED_FIELDS."""
    body = {
        "key_id": event.key_id,
        "chain": event.chain,
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "action": event.action,
        "actor_user_id": event.actor_user_id,
        "actor_credential_id": event.actor_credential_id,
        "actor_label": event.actor_label,
        "order_id": event.order_id,
        "voucher_id": event.voucher_id,
        "reason": event.reason,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return audit_keyring().mac(canonical.encode(), kid=event.key_id)


def database_identity(*, using: str = DEFAULT_DB_ALIAS) -> str:
    """Names the database (not the role) so that checkpoints of two databases never mix."""
    connection = connections[using]
    db = connection.settings_dict
    name = str(db["NAME"])
    if connection.vendor == "sqlite":
        in_memory = name.startswith("file:") or name == ":memory:"
        return f"sqlite:{name if in_memory else os.path.abspath(name)}"
    return f"{connection.vendor}://{db.get('HOST') or 'localhost'}:{db.get('PORT') or ''}/{name}"


def _checkpoint_write(line: str) -> None:
    # One O_APPEND write per line: lines of concurrent processes never interleave.
    path = settings.AUDIT_CHECKPOINT_PATH
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode() + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        checkpoint_logger.error("audit checkpoint not written to %s: %s", path, exc)
    checkpoint_logger.info("%s", line)


@dataclass(frozen=True)
class AuditEntry:
    """One event to record: the keywords of `audit_record`."""

    action: str
    actor: Actor
    order_id: int | None = None
    voucher_id: int | None = None
    reason: str = ""
    data: dict[str, Any] | None = None


def _unsealed(entry: AuditEntry, *, now: Any, key_id: str) -> AuditEvent:
    actor = entry.actor
    return AuditEvent(
        chain=_chain_for(order_id=entry.order_id, voucher_id=entry.voucher_id, actor=actor),
        action=entry.action,
        actor_user_id=actor.user_id,
        actor_credential_id=getattr(actor.credential, "pk", None),
        actor_label=actor.label,
        order_id=entry.order_id,
        voucher_id=entry.voucher_id,
        reason=entry.reason[:500],
        ip_address=actor.ip_address,
        user_agent=actor.user_agent[:300],
        data=json.loads(json.dumps(entry.data or {}, cls=DjangoJSONEncoder)),
        created_at=now,
        key_id=key_id,
    )


def audit_record(
    *,
    action: str,
    actor: Actor,
    order_id: int | None = None,
    voucher_id: int | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one event, unsealed: one INSERT, no lock, no savepoint. Inside a
    transaction it commits with it; in autocommit it is committed on return.
    Never store a secret in `data` or `reason`."""
    entry = AuditEntry(action, actor, order_id, voucher_id, reason, data)
    event = _unsealed(entry, now=timezone.now(), key_id=audit_keyring().active_kid)
    event.save(force_insert=True)
    return event


_BULK_INSERT = (
    "INSERT INTO orders_auditevent (chain, prev_hash, hash, key_id, created_at, action,"
    " actor_user_id, actor_credential_id, actor_label, order_id, voucher_id, reason,"
    " ip_address, user_agent, data)"
    " SELECT r.chain, '', '', %s, %s, r.action, r.actor_user_id, r.actor_credential_id,"
    " r.actor_label, r.order_id, r.voucher_id, r.reason, r.ip_address, r.user_agent,"
    " r.data::jsonb"
    " FROM unnest(%s::integer[], %s::text[], %s::bigint[], %s::bigint[], %s::text[],"
    " %s::bigint[], %s::bigint[], %s::text[], %s::inet[], %s::text[], %s::text[])"
    " AS r (chain, action, actor_user_id, actor_credential_id, actor_label, order_id,"
    " voucher_id, reason, ip_address, user_agent, data)"
)


# One event (an API read, an order placed: the hot callers) as plain parameters:
# binding eleven one-element arrays costs psycopg more than the INSERT itself.
_ONE_INSERT = (
    "INSERT INTO orders_auditevent (chain, prev_hash, hash, key_id, created_at, action,"
    " actor_user_id, actor_credential_id, actor_label, order_id, voucher_id, reason,"
    " ip_address, user_agent, data)"
    " VALUES (%s, '', '', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::inet, %s, %s::jsonb)"
)


def audit_records(events: Sequence[AuditEntry]) -> int:
    """Record many events, unsealed, with one INSERT (PostgreSQL: one statement of
    column arrays, or of plain values for one event, no model instances; SQLite:
    bulk_create). Returns how many."""
    if not events:
        return 0
    now, key_id = timezone.now(), audit_keyring().active_kid
    if connection.vendor != "postgresql":
        AuditEvent.objects.bulk_create(
            [_unsealed(entry, now=now, key_id=key_id) for entry in events], batch_size=1000
        )
        return len(events)
    rows: list[tuple[Any, ...]] = []
    for entry in events:
        actor = entry.actor
        rows.append(
            (
                _chain_for(order_id=entry.order_id, voucher_id=entry.voucher_id, actor=actor),
                entry.action,
                actor.user_id,
                getattr(actor.credential, "pk", None),
                actor.label,
                entry.order_id,
                entry.voucher_id,
                entry.reason[:500],
                actor.ip_address,
                actor.user_agent[:300],
                json.dumps(entry.data or {}, cls=DjangoJSONEncoder),
            )
        )
    with statement_cursor(connection) as cursor:  # prepared once per connection
        if len(rows) == 1:
            (row,) = rows
            cursor.execute(_ONE_INSERT, [row[0], key_id, now, *row[1:]])
        else:
            cursor.execute(_BULK_INSERT, [key_id, now, *map(list, zip(*rows, strict=True))])
    return len(events)


_SEAL_ARRAYS = (
    "UPDATE orders_auditevent SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash,"
    " sealed_at = %s FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[])"
    " AS v (id, seq, prev_hash, hash)"
    " WHERE orders_auditevent.id = v.id AND orders_auditevent.sealed_at IS NULL"
)


def _seal_sql(rows: int) -> str:
    # SQLite's form of _SEAL_ARRAYS (`sealed_at IS NULL`: no event is sealed twice).
    # VALUES columns are column1..column4 on PostgreSQL and SQLite alike (no WITH:
    # SQLite reports no rowcount for a statement that starts with one).
    values = ", ".join(
        ["(CAST(%s AS bigint), CAST(%s AS bigint), CAST(%s AS varchar), CAST(%s AS varchar))"]
        * rows
    )
    # Only placeholders are formatted in; every value is a parameter.
    head = (
        "UPDATE orders_auditevent SET seq = v.column2, prev_hash = v.column3, "
        "hash = v.column4, sealed_at = %s FROM (VALUES "
    )
    tail = ") AS v WHERE orders_auditevent.id = v.column1 AND orders_auditevent.sealed_at IS NULL"
    return head + values + tail


def _seal_chain(chain: int, *, limit: int) -> int:
    """Seal up to `limit` unsealed events of `chain` in one transaction; 0 when
    another sealer holds the chain or nothing is left."""
    with transaction.atomic():
        head = (
            AuditChainHead.objects.select_for_update(skip_locked=True).filter(chain=chain).first()
        )
        if head is None:
            return 0  # another sealer is sealing this chain
        events = list(
            AuditEvent.objects.filter(chain=chain, sealed_at__isnull=True)
            .order_by("id")
            .values_list(*_SEALED_FIELDS, named=True)[:limit]
        )
        sealed_at = timezone.now()
        seq, prev_hash = head.seq, head.last_hash
        rows: list[tuple[int, int, str, str]] = []
        for row in events:
            event = row._replace(seq=seq + 1, prev_hash=prev_hash)
            digest = _digest(event)
            if digest is None:  # written under a key this process does not hold
                logger.error(
                    "audit event %s has key id %r, which is not in AUDIT_KEY: chain %s "
                    "stays unsealed from it on",
                    event.id,
                    event.key_id,
                    chain,
                )
                break
            seq, prev_hash = seq + 1, digest
            rows.append((event.id, seq, event.prev_hash, digest))
        if not rows:
            return 0
        stamp = connection.ops.adapt_datetimefield_value(sealed_at)
        postgres = connection.vendor == "postgresql"
        step = len(rows) if postgres else SEAL_STATEMENT_ROWS
        with connection.cursor() as cursor:
            for start in range(0, len(rows), step):
                chunk = rows[start : start + step]
                if postgres:  # four array parameters, whatever the batch size
                    cursor.execute(_SEAL_ARRAYS, [stamp, *map(list, zip(*chunk, strict=True))])
                else:
                    params: list[Any] = [value for row in chunk for value in row]
                    cursor.execute(_seal_sql(len(chunk)), [stamp, *params])
                if cursor.rowcount != len(chunk):
                    raise RuntimeError(f"audit chain {chain}: an event was sealed meanwhile")
        AuditChainHead.objects.filter(chain=chain).update(seq=seq, last_hash=prev_hash)
        line = json.dumps(
            {
                "db": database_identity(),
                "chain": chain,
                "seq": seq,
                "hash": prev_hash,
                "at": sealed_at.isoformat(),
            },
            separators=(",", ":"),
        )
        transaction.on_commit(lambda: _checkpoint_write(line))
        return len(rows)


def audit_seal(*, limit: int = 5000) -> int:
    """Seal up to `limit` unsealed events into their chains; return how many.

    One transaction per chain: lock its head (SKIP LOCKED, so sealers running at
    once share the chains out and never seal an event twice), take its unsealed
    events in id order, link them with one UPDATE, move the head; after the
    commit, checkpoint the chain's newest seq and hash. Running it again seals
    nothing new."""
    chains = list(
        AuditEvent.objects.filter(sealed_at__isnull=True)
        .order_by("chain")
        .values_list("chain", flat=True)
        .distinct()
    )
    if not chains:
        return 0
    known = set(AuditChainHead.objects.filter(chain__in=chains).values_list("chain", flat=True))
    if missing := [c for c in chains if c not in known]:
        AuditChainHead.objects.bulk_create(
            [AuditChainHead(chain=c) for c in missing], ignore_conflicts=True
        )
    random.shuffle(chains)  # sealers at once start on different chains
    share = max(1, -(-limit // len(chains)))
    sealed = 0
    for chain in chains:
        if sealed >= limit:
            break
        sealed += _seal_chain(chain, limit=min(share, limit - sealed))
    return sealed


@dataclass(frozen=True)
class ChainProblem:
    chain: int
    seq: int
    event_id: int | None
    problem: str


def audit_chain_problems() -> Iterator[ChainProblem]:
    """Recompute every chain of sealed events; yield each event whose hash or link is
    wrong. Unsealed events are not in a chain yet (see `audit_seal_lag`)."""
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    sealed = AuditEvent.objects.filter(sealed_at__isnull=False)
    chains = set(heads) | set(sealed.order_by().values_list("chain", flat=True).distinct())
    for chain in sorted(chains):
        prev_hash, expected_seq = GENESIS, 1
        events = sealed.filter(chain=chain).order_by("seq")
        for event in events.iterator(chunk_size=2000):
            if event.seq is None:
                yield ChainProblem(chain, expected_seq, event.pk, "sealed without a seq")
                continue
            if event.seq != expected_seq:
                yield ChainProblem(chain, expected_seq, None, "event missing from the chain")
            if event.prev_hash != prev_hash:
                yield ChainProblem(chain, event.seq, event.pk, "link to previous event broken")
            digest = _digest(event)
            if digest is None:
                unknown = f"sealed with key {event.key_id!r}, which is not in AUDIT_KEY"
                yield ChainProblem(chain, event.seq, event.pk, unknown)
            elif digest != event.hash:
                yield ChainProblem(
                    chain, event.seq, event.pk, "content changed after it was written"
                )
            prev_hash, expected_seq = event.hash, event.seq + 1
        head = heads.get(chain)
        if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev_hash):
            yield ChainProblem(chain, head.seq, None, "chain head does not match the last event")


@dataclass(frozen=True)
class Checkpoint:
    chain: int
    seq: int
    hash: str
    at: str


def audit_checkpoints(*, path: str | Path, database: str) -> tuple[dict[int, Checkpoint], int]:
    """The newest checkpoint of each chain of `database` in the file, and the unreadable lines."""
    newest: dict[int, Checkpoint] = {}
    unreadable = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return newest, 0
    marker = json.dumps(database).encode()
    with handle:
        for raw in handle:
            if marker not in raw:
                continue  # another database's line: skip the JSON parse
            try:
                entry = json.loads(raw)
                if entry["db"] != database:
                    continue
                point = Checkpoint(
                    int(entry["chain"]), int(entry["seq"]), str(entry["hash"]), str(entry["at"])
                )
            except (ValueError, KeyError, TypeError):
                unreadable += 1
                continue
            known = newest.get(point.chain)
            if known is None or point.seq > known.seq:
                newest[point.chain] = point
    return newest, unreadable


def audit_checkpoint_problems(*, checkpoints: dict[int, Checkpoint]) -> Iterator[ChainProblem]:
    """Each chain whose checkpointed event is gone or changed, or whose head fell behind it."""
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    for chain, point in sorted(checkpoints.items()):
        event = AuditEvent.objects.filter(chain=chain, seq=point.seq).only("pk", "hash").first()
        if event is None:
            yield ChainProblem(
                chain,
                point.seq,
                None,
                f"checkpointed event (sealed {point.at}) is missing: trail wiped or rolled back",
            )
        elif event.hash != point.hash:
            yield ChainProblem(
                chain, point.seq, event.pk, "differs from its checkpoint: event rewritten"
            )
        head = heads.get(chain)
        if head is None or head.seq < point.seq:
            yield ChainProblem(
                chain,
                point.seq,
                None,
                f"chain head at seq {head.seq if head else 0} is behind the checkpoint: "
                "trail wiped or rolled back",
            )
