"""The worker: the task engine's worker plus the periodic sweeps, in one process.

The main thread runs the worker of the configured engine (orders.task_engines):
django-tasks-db's db_worker loop, or an RQ SimpleWorker with RQ's scheduler for
delayed retries (TASKS_BACKEND=django_tasks_rq.RQBackend). Everything else
below runs the same on both.

A daemon thread runs `maintenance_sweep` (dead-task and stalled-order
recovery, voucher expiry, lost webhook deliveries and e-mails) at start and then every
WORKER_SWEEP_SECONDS; a second one seals new audit events into their chains
(`audit_seal`) every AUDIT_SEAL_SECONDS, at once again while a batch comes back
full, and records the process's heartbeat every WORKER_HEARTBEAT_SECONDS (what
`/readyz` reports); a third, the stock batcher, delivers ready orders from stock
(`orders_deliver_ready`, FULFILMENT_BATCH_SIZE at a time), woken by each
placed order on PostgreSQL and every FULFILMENT_POLL_SECONDS anyway. The
engine's worker keeps its signal handling (SIGTERM/SIGINT finish the current
task, then stop; the batcher finishes its batch). Run as
many as you like, on as many machines: tasks and orders are claimed with
SKIP LOCKED, sealers share the chains out with SKIP LOCKED, and every sweep
is safe to run concurrently.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections, connection

from orders import task_engines
from orders.services.audit import audit_seal
from orders.services.fulfilment import orders_deliver_all_ready, orders_deliver_ready
from orders.services.heartbeats import Heart
from orders.services.recovery import maintenance_sweep
from orders.tasks import ReadyOrdersListener

logger = logging.getLogger("orders.worker")


def _sweep_forever(stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        try:
            close_old_connections()
            counts = maintenance_sweep()
            if any(counts.values()):
                logger.info("sweep: %s", counts)
        except Exception:
            logger.exception("maintenance sweep failed; trying again next round")
        finally:
            connection.close()
        stop.wait(every)


SEAL_BATCH = 5000


def _seal_forever(stop: threading.Event, every: float, heart: Heart | None = None) -> None:
    # Keeps its connection between rounds (one a second); a new one after an error.
    # Beats the worker's heartbeat too (`run_worker`): a sealer that cannot reach the database
    # (or has died) stops it, which /readyz reports.
    beat_every = float(settings.WORKER_HEARTBEAT_SECONDS)
    try:
        while not stop.is_set():
            sealed = 0
            try:
                close_old_connections()
                if heart is not None:
                    heart.beat(every=beat_every)
                sealed = audit_seal(limit=SEAL_BATCH)
            except Exception:
                logger.exception("audit seal failed; trying again next round")
                connection.close()
            if sealed < SEAL_BATCH:  # caught up: wait; a full batch goes on at once
                stop.wait(every)
    finally:
        connection.close()


def _deliver_forever(stop: threading.Event, every: float) -> None:
    # Keeps its connection (it LISTENs on it); a new one after an error.
    listener = ReadyOrdersListener(stop)
    batch = settings.FULFILMENT_BATCH_SIZE
    try:
        while not stop.is_set():
            try:
                close_old_connections()
                if orders_deliver_ready(limit=batch) < batch:  # none left: wait for more
                    listener.wait(every)
            except Exception:
                logger.exception("stock batch failed; trying again next round")
                connection.close()
                stop.wait(every)
    finally:
        connection.close()


class Command(BaseCommand):
    help = "Run the background worker of the task engine with the periodic sweeps."
    # Checks belong to deploy time (`manage.py check --deploy`); a restarted worker starts fast.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="Idle poll, seconds.")
        parser.add_argument("--queue-name", default="default", help="Queues, comma separated.")
        parser.add_argument("--worker-id", default=None, help="Unique id in the worker pool.")
        parser.add_argument(
            "--sweep-seconds",
            type=float,
            default=None,
            help="Seconds between sweeps (default WORKER_SWEEP_SECONDS).",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help=(
                "Sweep once, deliver the ready orders from stock, run every ready task, "
                "seal the audit events, then exit."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        every = options["sweep_seconds"] or float(settings.WORKER_SWEEP_SECONDS)
        engine = task_engines.current()
        queues = options["queue_name"].split(",")
        worker_id = options["worker_id"]
        if options["batch"]:
            maintenance_sweep()
            if settings.FULFILMENT_STOCK_BATCHER:
                orders_deliver_all_ready()
            engine.work_burst(queue_names=queues, worker_id=worker_id)
            while audit_seal(limit=SEAL_BATCH):
                pass
            return
        stop = threading.Event()
        sweeper = threading.Thread(
            target=_sweep_forever, args=(stop, every), name="sweeper", daemon=True
        )
        sealer = threading.Thread(
            target=_seal_forever,
            args=(
                stop,
                float(settings.AUDIT_SEAL_SECONDS),
                Heart.for_process(options["worker_id"]),
            ),
            name="audit-sealer",
            daemon=True,
        )
        batcher = threading.Thread(
            target=_deliver_forever,
            args=(stop, float(settings.FULFILMENT_POLL_SECONDS)),
            name="stock-batcher",
            daemon=True,
        )
        if settings.FULFILMENT_STOCK_BATCHER:
            # Orders placed while no worker ran go out from stock before the first
            # sweep, which would otherwise queue a recovery task for each of them.
            try:
                orders_deliver_all_ready()
            except Exception:
                logger.exception("stock batch at start failed; the batcher tries again")
            finally:
                connection.close()
        sweeper.start()
        sealer.start()
        if settings.FULFILMENT_STOCK_BATCHER:
            batcher.start()
        if not isinstance(engine, task_engines.DatabaseEngine):
            # db_worker logs this line itself; scripts wait for it (bench/servers.py).
            self.stdout.write(f"Starting worker worker_id={worker_id} queues={','.join(queues)}")
            self.stdout.flush()
        try:
            engine.work(queue_names=queues, worker_id=worker_id, interval=options["interval"])
        finally:
            stop.set()
            if batcher.is_alive():
                batcher.join(timeout=30)  # a batch in hand commits (or rolls back) first
