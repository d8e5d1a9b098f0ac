"""Seal the audit trail: what `run_worker`'s sealer thread does, for setups without it
(the RQ backend) or for an operator catching up after an outage."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from orders.management.commands.run_worker import SEAL_BATCH, _seal_forever
from orders.services.audit import audit_seal


class Command(BaseCommand):
    help = (
        "Seal new audit events into their keyed chains every AUDIT_SEAL_SECONDS "
        "(safe to run beside other sealers), or once with --once."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Seal the backlog, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            total = 0
            while sealed := audit_seal(limit=SEAL_BATCH):
                total += sealed
            self.stdout.write(f"sealed {total} audit event(s)")
            return
        stop = threading.Event()
        try:
            _seal_forever(stop, float(settings.AUDIT_SEAL_SECONDS))
        except KeyboardInterrupt:
            stop.set()
