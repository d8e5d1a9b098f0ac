"""Block AVAILABLE vouchers past their expiry date."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orders.services.actors import Actor
from orders.services.expiry import vouchers_expire


class Command(BaseCommand):
    help = "Mark AVAILABLE vouchers past expires_at as BLOCKED (reason 'expired'), audited."

    def handle(self, *args: Any, **options: Any) -> None:
        count = vouchers_expire(actor=Actor.system("expire_vouchers"))
        self.stdout.write(f"blocked {count} expired voucher(s)")
