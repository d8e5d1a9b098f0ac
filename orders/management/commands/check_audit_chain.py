"""Verify the audit trail: every sealed HMAC and link, every head, the checkpoints
outside it, and how far the sealer lags behind."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from orders.models import AuditEvent
from orders.selectors.audit import audit_seal_lag
from orders.services.audit import (
    audit_chain_problems,
    audit_checkpoint_problems,
    audit_checkpoints,
    audit_seal,
    database_identity,
)


class Command(BaseCommand):
    help = (
        "Verify the audit trail's sealed keyed hash chains and compare them with the newest "
        "checkpoints; report the events not sealed yet. Exit 1 if any sealed event was altered "
        "or removed, the trail was wiped or rolled back, or the oldest unsealed event is older "
        "than AUDIT_SEAL_MAX_LAG_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint-file",
            default=None,
            help="checkpoints to compare with (default: AUDIT_CHECKPOINT_PATH), "
            "e.g. lines collected from the orders.audit.checkpoint log",
        )
        parser.add_argument(
            "--seal",
            action="store_true",
            help="seal every unsealed event first (what the worker does every second)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["seal"]:
            sealed = 0
            while batch := audit_seal():
                sealed += batch
            self.stdout.write(f"sealed {sealed} event(s) first")
        path = options["checkpoint_file"] or settings.AUDIT_CHECKPOINT_PATH
        database = database_identity()
        # Read the checkpoints before the snapshot: each was written after its batch committed.
        checkpoints, unreadable = audit_checkpoints(path=path, database=database)
        outer = connection.in_atomic_block
        with transaction.atomic():
            if connection.vendor == "postgresql" and not outer:
                # One snapshot for heads and events while sealers go on committing.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            problems = [
                *audit_chain_problems(),
                *audit_checkpoint_problems(checkpoints=checkpoints),
            ]
            sealed_events = AuditEvent.objects.filter(sealed_at__isnull=False)
            events = sealed_events.count()
            chains = sealed_events.order_by().values("chain").distinct().count()
            lag = audit_seal_lag()
        for problem in problems:
            event = f"event {problem.event_id}" if problem.event_id is not None else "no event"
            self.stdout.write(
                f"PROBLEM chain {problem.chain} seq {problem.seq} ({event}): {problem.problem}"
            )
        if unreadable:
            self.stdout.write(f"note: {unreadable} unreadable line(s) in {path} ignored")
        age, max_lag = lag.age_seconds(), float(settings.AUDIT_SEAL_MAX_LAG_SECONDS)
        if lag.unsealed:
            self.stdout.write(
                f"seal backlog: {lag.unsealed} event(s) not sealed yet, oldest {age:.1f} s"
            )
        else:
            self.stdout.write("seal backlog: none, every event is sealed")
        too_late = lag.unsealed > 0 and age > max_lag
        if too_late:
            self.stdout.write(
                f"PROBLEM seal lag {age:.1f} s is over AUDIT_SEAL_MAX_LAG_SECONDS ({max_lag:g} s): "
                "is the worker's sealer running? (`check_audit_chain --seal` seals now)"
            )
        if problems:
            raise CommandError(f"audit chain broken: {len(problems)} problem(s) found.")
        self.stdout.write(f"audit chain OK: {events} events in {chains} chains")
        if checkpoints:
            self.stdout.write(
                f"checkpoints OK: {len(checkpoints)} chains match the newest checkpoints in {path}"
            )
        else:
            self.stdout.write(
                f"note: no checkpoints of {database} in {path}: a wipe or rollback cannot be seen"
            )
        if too_late:
            raise CommandError(f"audit seal lag {age:.1f} s is over {max_lag:g} s.")
