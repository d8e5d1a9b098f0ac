"""Verify the audit trail: every HMAC and link, every head, and the checkpoints outside it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.models import AuditEvent
from orders.services.audit import (
    audit_chain_problems,
    audit_checkpoint_problems,
    audit_checkpoints,
    database_identity,
)


class Command(BaseCommand):
    help = (
        "Verify the audit trail's keyed hash chains and compare them with the newest "
        "checkpoints; exit 1 if any event was altered or removed, or the trail was wiped "
        "or rolled back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint-file",
            default=None,
            help="checkpoints to compare with (default: AUDIT_CHECKPOINT_PATH), "
            "e.g. lines collected from the orders.audit.checkpoint log",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["checkpoint_file"] or settings.AUDIT_CHECKPOINT_PATH
        database = database_identity()
        checkpoints, unreadable = audit_checkpoints(path=path, database=database)
        problems = 0
        for problem in [
            *audit_chain_problems(),
            *audit_checkpoint_problems(checkpoints=checkpoints),
        ]:
            problems += 1
            event = f"event {problem.event_id}" if problem.event_id is not None else "no event"
            self.stdout.write(
                f"PROBLEM chain {problem.chain} seq {problem.seq} ({event}): {problem.problem}"
            )
        if unreadable:
            self.stdout.write(f"note: {unreadable} unreadable line(s) in {path} ignored")
        if problems:
            raise CommandError(f"audit chain broken: {problems} problem(s) found.")
        events = AuditEvent.objects.count()
        chains = AuditEvent.objects.order_by().values("chain").distinct().count()
        self.stdout.write(f"audit chain OK: {events} events in {chains} chains")
        if checkpoints:
            self.stdout.write(
                f"checkpoints OK: {len(checkpoints)} chains match the newest checkpoints in {path}"
            )
        else:
            self.stdout.write(
                f"note: no checkpoints of {database} in {path}: a wipe or rollback cannot be seen"
            )
