"""Resume what dead workers left: stale RUNNING tasks, stalled open orders, lost sends."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.services.notifications import delivery_emails_resume
from orders.services.recovery import orders_recover, tasks_recover, tasks_repath
from orders.services.webhooks import webhook_deliveries_resume


class Command(BaseCommand):
    help = (
        "Mark tasks RUNNING longer than TASK_LEASE_SECONDS as failed and enqueue them again, "
        "enqueue fulfilment for orders stalled in PLACED/PENDING, and enqueue webhook "
        "deliveries and delivery e-mails whose task was lost. Safe to run any time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--lease-seconds",
            type=int,
            default=None,
            help="Override TASK_LEASE_SECONDS for this run.",
        )

    def handle(self, *args: Any, lease_seconds: int | None, **options: Any) -> None:
        tasks_repath()
        tasks = tasks_recover(lease_seconds=lease_seconds)
        orders = orders_recover(lease_seconds=lease_seconds)
        webhooks = webhook_deliveries_resume(overdue_seconds=lease_seconds)
        emails = delivery_emails_resume(overdue_seconds=lease_seconds)
        self.stdout.write(
            f"recovered {tasks} task(s), re-enqueued {orders} order(s), "
            f"resumed {webhooks} webhook delivery(ies) and {emails} delivery e-mail(s)"
        )
