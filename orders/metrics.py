"""Prometheus metrics (prometheus-client), served by `/metrics` (starship/health.py).

Two kinds:
- **Counted as it happens**, in the process that does it: HTTP requests by
  method and status and their duration (`orders.logs.RequestLogMiddleware`),
  vouchers revealed on the dashboard, API reads that returned vouchers. Under
  gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR (an empty
  directory per host, cleared at start) so every worker's counts are summed;
  without it each process answers for itself.
- **Read from the database at scrape time**, the same on every host: orders by
  status and sub-status, time from placed to delivered of the last hour's
  orders, the task queue and the orders waiting (`selectors.health`), refunds
  waiting for finance, webhook deliveries by status, stock below threshold,
  workers alive, the audit seal backlog.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from orders.enums import OrderStatus

HTTP_REQUESTS = Counter(
    "starship_http_requests", "HTTP requests answered, by method and status", ["method", "status"]
)
HTTP_SECONDS = Histogram(
    "starship_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
VOUCHER_REVEALS = Counter("starship_voucher_reveals", "Vouchers revealed to staff (dashboard)")
API_VOUCHER_READS = Counter(
    "starship_api_voucher_reads", "API order reads that returned vouchers (each audited)"
)
API_IP_REFUSALS = Counter(
    "starship_api_ip_refusals",
    "API requests refused because the address is outside the credential's allowlist",
)

# Placed -> delivered, seconds: the buckets of the last hour's orders.
DELIVERY_BUCKETS = (1, 2, 5, 10, 30, 60, 300, 900, 3600)
DELIVERED = (OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED)


class DatabaseCollector:
    """Gauges read at each scrape; a few indexed statements (the orders by status
    is one GROUP BY over the orders table, ~0.4 s at 1,000,000 orders:
    scrape it every 15 s or slower)."""

    def collect(self) -> Iterator[Metric]:
        # Imported here: the logging configuration imports this module (through
        # orders.logs) before the app registry is ready.
        from orders.models import Order, WebhookDelivery
        from orders.selectors.finance import refunds_owed
        from orders.selectors.health import readiness
        from orders.selectors.inventory import low_stock

        orders = GaugeMetricFamily(
            "starship_orders", "Orders by status and sub-status", labels=["status", "sub_status"]
        )
        rows = Order.objects.order_by().values_list("status", "sub_status").annotate(n=Count("id"))
        for status, sub_status, n in rows:
            orders.add_metric([status, sub_status], n)
        yield orders

        now = timezone.now()
        recent = Order.objects.filter(placed_at__gte=now - timedelta(hours=1), status__in=DELIVERED)
        within = recent.aggregate(
            total=Count("id"),
            waited=Sum(
                ExpressionWrapper(F("delivered_at") - F("placed_at"), output_field=DurationField())
            ),
            **{
                f"le_{b}": Count(
                    "id", filter=Q(delivered_at__lte=F("placed_at") + timedelta(seconds=b))
                )
                for b in DELIVERY_BUCKETS
            },
        )
        histogram = GaugeHistogramMetricFamily(
            "starship_order_delivery_seconds",
            "Seconds from placed to delivered, orders placed in the last hour",
        )
        histogram.add_metric(
            [],
            [(str(float(b)), within[f"le_{b}"]) for b in DELIVERY_BUCKETS]
            + [("+Inf", within["total"])],
            gsum_value=within["waited"].total_seconds() if within["waited"] else 0.0,
        )
        yield histogram

        ready = readiness().checks
        tasks, waiting = ready.get("tasks", {}), ready.get("orders_waiting", {})
        yield _gauge("starship_tasks_ready", "Tasks ready to run", tasks.get("ready"))
        yield _gauge(
            "starship_tasks_oldest_ready_age_seconds",
            "How long the oldest ready task has waited",
            tasks.get("oldest_ready_age_s") or 0,
        )
        yield _gauge("starship_orders_placed_waiting", "Orders still PLACED", waiting.get("placed"))
        yield _gauge(
            "starship_orders_placed_oldest_age_seconds",
            "Age of the oldest order still PLACED",
            waiting.get("oldest_placed_age_s") or 0,
        )
        workers, seal = ready.get("workers", {}), ready.get("audit_seal", {})
        yield _gauge(
            "starship_workers_alive", "Workers with a recent heartbeat", workers.get("alive")
        )
        yield _gauge("starship_audit_unsealed", "Audit events not sealed yet", seal.get("unsealed"))
        yield _gauge(
            "starship_audit_oldest_unsealed_age_seconds",
            "Age of the oldest unsealed audit event",
            seal.get("oldest_unsealed_age_s") or 0,
        )
        yield _gauge(
            "starship_refunds_waiting",
            "Refunds waiting for a finance decision",
            refunds_owed().count(),
        )
        webhooks = GaugeMetricFamily(
            "starship_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        by_status = WebhookDelivery.objects.order_by().values_list("status").annotate(n=Count("id"))
        for status, n in by_status:
            webhooks.add_metric([status], n)
        yield webhooks
        yield _gauge(
            "starship_stock_below_threshold",
            "Products and denominations whose stock is below their threshold",
            len(low_stock()),
        )


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


_DATABASE = CollectorRegistry()
_DATABASE.register(DatabaseCollector())


def render() -> bytes:
    """The text exposition of every metric: this host's (or all its workers')
    counters, then the database's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    return generate_latest(counted) + generate_latest(_DATABASE)
