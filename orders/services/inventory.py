"""Voucher inventory: take vouchers or whole import batches out of circulation.

An inventory admin blocks (reversible) or revokes (permanent) vouchers not
yet handed out, one by one or a batch at a time; a voucher that belongs to
an order is never touched. Every change is audited with its reason. Importing
vouchers is services/imports.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from orders.crypto import keyring
from orders.enums import DeliveryType, ImportBatchStatus, InventoryStatus
from orders.errors import InventoryConflict, NotFound, ValidationFailed
from orders.models import ImportBatch, Voucher
from orders.rules import (
    BLOCKABLE_STATUSES,
    REVOCABLE_STATUSES,
    STOCKED_BATCH_STATUSES,
    is_expired,
)
from orders.services.actors import Actor
from orders.services.audit import audit_record

# Only these columns are loaded when changing a voucher's status: never a secret.
_STATUS_FIELDS = ("id", "product_id", "batch_id", "status", "status_reason", "expires_at")


def voucher_fingerprint(*, delivery_type: str, card_number: str = "", claim_url: str = "") -> str:
    """Duplicate-detection key: the card number, or the claim URL for URL products."""
    if delivery_type == DeliveryType.URL:
        # fingerprint() folds case and drops dashes, which is right for card
        # numbers but would make distinct URL tokens collide (paths are
        # case-sensitive). Hex keeps them distinct; ":" never occurs in a card number.
        parts = urlsplit(claim_url)
        canonical = urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment)
        )
        return keyring().fingerprint("url:" + canonical.encode().hex())
    return keyring().fingerprint(card_number)


# --- Block, unblock, revoke ----------------------------------------------------


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required.", field="reason")
    return reason[:500]


def _locked_voucher(voucher_id: int) -> Voucher:
    # NOWAIT is not used: a block waits for an allocation in progress, then sees
    # its outcome (ALLOCATED) and refuses, instead of failing at random.
    voucher = (
        Voucher.objects.select_for_update(no_key=True)
        .only(*_STATUS_FIELDS)
        .filter(pk=voucher_id)
        .first()
    )
    if voucher is None:
        raise NotFound("No voucher with that id.")
    return voucher


def _refuse(voucher: Voucher, action: str) -> InventoryConflict:
    status = InventoryStatus(voucher.status)
    if status in (InventoryStatus.ALLOCATED, InventoryStatus.DELIVERED, InventoryStatus.COMPLETED):
        return InventoryConflict(
            f"Voucher {voucher.pk} is {status.label.lower()} to an order and cannot be {action}."
        )
    if status == InventoryStatus.REVOKED:
        return InventoryConflict(f"Voucher {voucher.pk} is revoked; revocation is permanent.")
    return InventoryConflict(f"Voucher {voucher.pk} is {status.label.lower()}; cannot be {action}.")


def _set_status(voucher: Voucher, *, status: InventoryStatus, reason: str) -> None:
    voucher.status = status
    voucher.status_reason = reason
    voucher.save(update_fields=["status", "status_reason", "updated_at"])


@transaction.atomic
def voucher_block(*, voucher_id: int, actor: Actor, reason: str) -> Voucher:
    """Take an AVAILABLE voucher out of allocation; allocated or delivered ones cannot be."""
    return _voucher_act(
        voucher_id=voucher_id,
        actor=actor,
        reason=reason,
        from_statuses=BLOCKABLE_STATUSES,
        to=InventoryStatus.BLOCKED,
        verb="blocked",
        action="voucher.block",
    )


@transaction.atomic
def voucher_unblock(*, voucher_id: int, actor: Actor, reason: str) -> Voucher:
    """Return a BLOCKED voucher to AVAILABLE, unless it has expired meanwhile."""
    reason = _reason(reason)
    voucher = _locked_voucher(voucher_id)
    if voucher.status != InventoryStatus.BLOCKED:
        raise _refuse(voucher, "unblocked")
    if is_expired(voucher.expires_at):
        raise InventoryConflict(
            f"Voucher {voucher.pk} has expired and cannot be made available; revoke it instead."
        )
    _set_status(voucher, status=InventoryStatus.AVAILABLE, reason="")
    audit_record(
        action="voucher.unblock",
        actor=actor,
        voucher_id=voucher.pk,
        reason=reason,
        data={"voucher_id": voucher.pk, "batch_id": voucher.batch_id},
    )
    return voucher


@transaction.atomic
def voucher_revoke(*, voucher_id: int, actor: Actor, reason: str) -> Voucher:
    """Revoke an AVAILABLE or BLOCKED voucher for good: it never becomes AVAILABLE again."""
    return _voucher_act(
        voucher_id=voucher_id,
        actor=actor,
        reason=reason,
        from_statuses=REVOCABLE_STATUSES,
        to=InventoryStatus.REVOKED,
        verb="revoked",
        action="voucher.revoke",
    )


def _voucher_act(
    *,
    voucher_id: int,
    actor: Actor,
    reason: str,
    from_statuses: frozenset[InventoryStatus],
    to: InventoryStatus,
    verb: str,
    action: str,
) -> Voucher:
    reason = _reason(reason)
    voucher = _locked_voucher(voucher_id)
    if voucher.status not in from_statuses:
        raise _refuse(voucher, verb)
    previous = voucher.status
    _set_status(voucher, status=to, reason=reason)
    audit_record(
        action=action,
        actor=actor,
        voucher_id=voucher.pk,
        reason=reason,
        data={"voucher_id": voucher.pk, "batch_id": voucher.batch_id, "from": previous},
    )
    return voucher


def _locked_batch(batch_id: int) -> ImportBatch:
    batch = ImportBatch.objects.select_for_update(no_key=True).filter(pk=batch_id).first()
    if batch is None:
        raise NotFound("No import batch with that id.")
    if batch.status not in STOCKED_BATCH_STATUSES:
        raise InventoryConflict(f"Batch {batch.pk} has no imported vouchers.")
    return batch


def _batch_move(
    *, batch: ImportBatch, from_statuses: Iterable[str], to: InventoryStatus, reason: str
) -> int:
    # One UPDATE ... WHERE status IN (...): PostgreSQL locks each row it changes
    # and re-checks the status of rows an allocation holds once that commits, so
    # an allocated voucher is never blocked and a blocked one never allocated.
    return Voucher.objects.filter(batch_id=batch.pk, status__in=list(from_statuses)).update(
        status=to, status_reason=reason, updated_at=timezone.now()
    )


@transaction.atomic
def batch_quarantine(*, batch_id: int, actor: Actor, reason: str) -> ImportBatch:
    """Block every AVAILABLE voucher of a batch and mark the batch QUARANTINED."""
    return _batch_act(
        batch_id=batch_id,
        actor=actor,
        reason=reason,
        from_statuses=BLOCKABLE_STATUSES,
        to=InventoryStatus.BLOCKED,
        verb="Quarantined",
        action="batch.quarantine",
        count_key="blocked_count",
    )


@transaction.atomic
def batch_revoke(*, batch_id: int, actor: Actor, reason: str) -> ImportBatch:
    """Revoke every AVAILABLE or BLOCKED voucher of a batch; the batch stays QUARANTINED."""
    return _batch_act(
        batch_id=batch_id,
        actor=actor,
        reason=reason,
        from_statuses=REVOCABLE_STATUSES,
        to=InventoryStatus.REVOKED,
        verb="Revoked",
        action="batch.revoke",
        count_key="revoked_count",
    )


def _batch_act(
    *,
    batch_id: int,
    actor: Actor,
    reason: str,
    from_statuses: Iterable[str],
    to: InventoryStatus,
    verb: str,
    action: str,
    count_key: str,
) -> ImportBatch:
    reason = _reason(reason)
    batch = _locked_batch(batch_id)
    moved = _batch_move(batch=batch, from_statuses=from_statuses, to=to, reason=reason)
    # ImportBatchStatus has no REVOKED; QUARANTINED keeps the batch out of use either way.
    batch.status = ImportBatchStatus.QUARANTINED
    batch.note = f"{verb}: {reason}"[:500]
    batch.save(update_fields=["status", "note"])
    audit_record(
        action=action,
        actor=actor,
        reason=reason,
        data={"batch_id": batch.pk, "product_id": batch.product_id, count_key: moved},
    )
    return batch
