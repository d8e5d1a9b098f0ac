"""Recompute every audit hash chain and report any event changed or removed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.models import AuditEvent
from orders.services.audit import audit_chain_problems


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains; exit 1 if any event was altered or removed."

    def handle(self, *args: Any, **options: Any) -> None:
        problems = 0
        for problem in audit_chain_problems():
            problems += 1
            event = f"event {problem.event_id}" if problem.event_id is not None else "no event"
            self.stdout.write(
                f"PROBLEM chain {problem.chain} seq {problem.seq} ({event}): {problem.problem}"
            )
        if problems:
            raise CommandError(f"audit chain broken: {problems} problem(s) found.")
        events = AuditEvent.objects.count()
        chains = AuditEvent.objects.order_by().values("chain").distinct().count()
        self.stdout.write(f"audit chain OK: {events} events in {chains} chains")
