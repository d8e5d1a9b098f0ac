"""Verify that every wallet balance equals the sum of its ledger entries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.models import Wallet
from orders.services.wallets import ledger_mismatches


class Command(BaseCommand):
    help = "Check that each wallet's balance equals the sum of its entries; exit 1 if not."

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = ledger_mismatches()
        for m in mismatches:
            self.stdout.write(
                f"MISMATCH wallet {m.wallet_id} ({m.client}, {m.currency}): "
                f"balance {m.balance}, sum of entries {m.entries_total}, "
                f"difference {m.balance - m.entries_total}"
            )
        if mismatches:
            raise CommandError(f"ledger broken: {len(mismatches)} wallet(s) do not add up.")
        self.stdout.write(f"ledger OK: {Wallet.objects.count()} wallets")
