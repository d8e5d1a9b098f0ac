"""Seal the audit trail in a test, as the worker's sealer does every second."""

from __future__ import annotations

from orders.models import AuditEvent
from orders.services.audit import audit_seal


def seal_all() -> int:
    """Seal every unsealed event; return how many were sealed."""
    total = 0
    while sealed := audit_seal():
        total += sealed
    return total


def sealed(*events: AuditEvent) -> list[AuditEvent]:
    """Seal every unsealed event, then return `events` as stored (seq, hashes and all)."""
    seal_all()
    for event in events:
        event.refresh_from_db()
    return list(events)
