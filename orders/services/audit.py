"""The only writer of AuditEvent, and the verifier of its keyed hash chains.

Each event's `hash` is an HMAC-SHA256, under the AUDIT_KEY key named by its
`key_id`, of its content and of the previous event's hash in its chain: without
the key nobody can recompute a chain after changing an event. After each event
commits, its (database, chain, seq, hash) is appended to AUDIT_CHECKPOINT_PATH
and logged on "orders.audit.checkpoint", outside the database: a wipe or a
rollback to an older copy, consistent as its chains may be, falls behind the
newest checkpoint and `check_audit_chain` reports it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from orders.crypto import audit_keyring
from orders.models import AuditChainHead, AuditEvent
from orders.services.actors import Actor

GENESIS = "0" * 64
checkpoint_logger = logging.getLogger("orders.audit.checkpoint")


def _chain_for(*, order_id: int | None, voucher_id: int | None, actor: Actor) -> int:
    # Events of one order stay in one chain (readable in order); others spread out.
    n = max(1, settings.AUDIT_CHAINS)
    if order_id is not None:
        return order_id % n
    if voucher_id is not None:
        return voucher_id % n
    return secrets.randbelow(n)


def _digest(event: AuditEvent) -> str | None:
    """The event's HMAC under its own key id; None when that key is not in AUDIT_KEY."""
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
    # One O_APPEND write per event: lines of concurrent processes never interleave.
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


@transaction.atomic
def audit_record(
    *,
    action: str,
    actor: Actor,
    order_id: int | None = None,
    voucher_id: int | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to its chain. Never store a secret in `data` or `reason`."""
    chain = _chain_for(order_id=order_id, voucher_id=voucher_id, actor=actor)
    heads = AuditChainHead.objects.select_for_update()
    head = heads.filter(chain=chain).first()
    if head is None:  # the chain's first event: create its head, then lock it
        AuditChainHead.objects.get_or_create(chain=chain)
        head = heads.get(chain=chain)
    event = AuditEvent(
        chain=chain,
        seq=head.seq + 1,
        prev_hash=head.last_hash,
        action=action,
        actor_user_id=actor.user_id,
        actor_credential_id=getattr(actor.credential, "pk", None),
        actor_label=actor.label,
        order_id=order_id,
        voucher_id=voucher_id,
        reason=reason[:500],
        ip_address=actor.ip_address,
        user_agent=actor.user_agent[:300],
        data=json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder)),
        created_at=timezone.now(),
        key_id=audit_keyring().active_kid,
    )
    event.hash = _digest(event) or ""
    event.save(force_insert=True)
    head.seq, head.last_hash = event.seq, event.hash
    head.save(update_fields=["seq", "last_hash"])
    line = json.dumps(
        {
            "db": database_identity(),
            "chain": event.chain,
            "seq": event.seq,
            "hash": event.hash,
            "at": event.created_at.isoformat(),
        },
        separators=(",", ":"),
    )
    transaction.on_commit(lambda: _checkpoint_write(line))
    return event


@dataclass(frozen=True)
class ChainProblem:
    chain: int
    seq: int
    event_id: int | None
    problem: str


def audit_chain_problems() -> Iterator[ChainProblem]:
    """Recompute every chain; yield each event whose hash or link is wrong."""
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    chains = set(heads) | set(AuditEvent.objects.values_list("chain", flat=True).distinct())
    for chain in sorted(chains):
        prev_hash, expected_seq = GENESIS, 1
        events = AuditEvent.objects.filter(chain=chain).order_by("seq")
        for event in events.iterator(chunk_size=2000):
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
                f"checkpointed event (written {point.at}) is missing: trail wiped or rolled back",
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


@dataclass(frozen=True)
class AuditEntry:
    """One event for `audit_records`: the keywords of `audit_record`."""

    action: str
    actor: Actor
    order_id: int | None = None
    voucher_id: int | None = None
    reason: str = ""
    data: dict[str, Any] | None = None


def audit_records(events: list[AuditEntry]) -> list[AuditEvent]:
    """Record many events at once (set-based callers: fulfilment batches).

    Interim form: one `audit_record` per event, until the bulk INSERT lands.
    """
    return [
        audit_record(
            action=event.action,
            actor=event.actor,
            order_id=event.order_id,
            voucher_id=event.voucher_id,
            reason=event.reason,
            data=event.data,
        )
        for event in events
    ]
