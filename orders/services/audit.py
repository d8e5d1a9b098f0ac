"""The only writer of AuditEvent, and the verifier of its hash chains."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from orders.models import AuditChainHead, AuditEvent
from orders.services.actors import Actor

GENESIS = "0" * 64


def _chain_for(*, order_id: int | None, voucher_id: int | None, actor: Actor) -> int:
    # Events of one order stay in one chain (readable in order); others spread out.
    n = max(1, settings.AUDIT_CHAINS)
    if order_id is not None:
        return order_id % n
    if voucher_id is not None:
        return voucher_id % n
    return secrets.randbelow(n)


def _digest(event: AuditEvent) -> str:
    body = {
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
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    )
    event.hash = _digest(event)
    event.save(force_insert=True)
    head.seq, head.last_hash = event.seq, event.hash
    head.save(update_fields=["seq", "last_hash"])
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
            if _digest(event) != event.hash:
                yield ChainProblem(
                    chain, event.seq, event.pk, "content changed after it was written"
                )
            prev_hash, expected_seq = event.hash, event.seq + 1
        head = heads.get(chain)
        if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev_hash):
            yield ChainProblem(chain, head.seq, None, "chain head does not match the last event")
