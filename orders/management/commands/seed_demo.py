"""Seed a demo world: clients, catalog, inventory, ~300 orders over 30 days, staff.

Everything is written through the services (orders/demo/), then back-dated;
idempotent, so a second run changes nothing (it only places a fresh handful of
open orders when none is left). `check_ledger` and `check_audit_chain` pass.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.demo.world import demo_world_ensure


class Command(BaseCommand):
    help = "Create (once) a demo world: clients, wallets, catalog, inventory, orders, staff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=20250101, help="Random seed.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_world_ensure(seed=options["seed"])
        self.stdout.write("\n".join(report.lines))
        self.stdout.write(
            f"Vendors: {', '.join(report.vendors)}. Products: {report.products}, "
            f"vouchers in stock: {report.vouchers_in_stock}.\n"
            f"Demo orders: {report.demo_orders} ({report.created_orders} created by this run); "
            f"{report.open_orders} open on the slow vendor, to cancel or retry.\n"
            "Dashboard: /dashboard/   Admin: /admin/"
        )
