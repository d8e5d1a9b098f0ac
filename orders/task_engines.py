"""The task engine behind TASKS["default"]: what the worker, the sweeps and
`/readyz` need to know of it, for each engine we run on.

- **django-tasks-db** (`django_tasks_db.DatabaseBackend`, the default): the
  queue is a table of our database; `db_worker` claims rows with SKIP LOCKED.
- **RQ on Redis** (`django_tasks_rq.RQBackend`): the queue is RQ's; the worker
  is an RQ `SimpleWorker` (jobs run in the worker's own process: no fork per
  job beside the worker's threads, and one database connection kept) with
  RQ's scheduler, in a thread, for the delayed retries (`run_after`).

Either way a task takes ids and its service re-checks the state under a lock,
so running one twice does nothing the second time; what an engine adds is how
a dead worker's task is found (`recover_dead`), whether an order already has a
fulfilment task waiting (`queued_first_args`), how much is waiting
(`backlog`) and the worker loop itself (`work`). See docs/decisions/0009.

This module imports no service (the sweeps in services/recovery.py call it).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

logger = logging.getLogger("orders.worker")

LEASE_EXPIRED = "orders.services.recovery.TaskLeaseExpired"
# A dead task is handed back to its code as (task path, args, kwargs).
Requeue = Callable[[str, list[Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Backlog:
    """Tasks ready to run now, and since when the oldest has waited."""

    ready: int
    oldest_ready_at: datetime | None


class TaskEngine(Protocol):
    name: str

    def backlog(self) -> Backlog: ...

    def queued_first_args(
        self, paths: Iterable[str], first_args: list[int], *, lease_seconds: int
    ) -> set[int]: ...

    def recover_dead(self, *, lease_seconds: int, limit: int, requeue: Requeue) -> int: ...

    def work(self, *, queue_names: list[str], worker_id: str | None, interval: float) -> None: ...

    def work_burst(self, *, queue_names: list[str], worker_id: str | None) -> None: ...


def _aware(at: datetime) -> datetime:
    return at if timezone.is_aware(at) else at.replace(tzinfo=UTC)


def _presumed_dead(worker: str, lease_seconds: int) -> str:
    return (
        f"Worker {worker} held this task for more than {lease_seconds}s "
        "and is presumed dead; the task was enqueued again."
    )


class DatabaseEngine:
    """django-tasks-db: the queue is the DBTaskResult table."""

    name = "django_tasks_db.DatabaseBackend"

    def backlog(self) -> Backlog:
        from django.db.models import Count, Min, Q
        from django_tasks_db.models import DBTaskResult, get_date_max

        waiting = DBTaskResult.objects.ready().aggregate(
            ready=Count("id"),
            # A delayed retry waits from its run_after, a plain task from its enqueue.
            enqueued=Min("enqueued_at", filter=Q(run_after=get_date_max())),
            delayed=Min("run_after", filter=~Q(run_after=get_date_max())),
        )
        since = min((t for t in (waiting["enqueued"], waiting["delayed"]) if t), default=None)
        return Backlog(ready=waiting["ready"], oldest_ready_at=since)

    def queued_first_args(
        self, paths: Iterable[str], first_args: list[int], *, lease_seconds: int
    ) -> set[int]:
        """Of `first_args`, those a READY task of one of `paths` was given first, or
        a RUNNING one started less than the lease ago (an older one has a dead worker
        and is `recover_dead`'s)."""
        from django.db.models import Q
        from django_tasks_db.models import DBTaskResult

        started_since = timezone.now() - timedelta(seconds=lease_seconds)
        live = DBTaskResult.objects.filter(
            Q(status=TaskResultStatus.READY)
            | Q(status=TaskResultStatus.RUNNING, started_at__gte=started_since),
            task_path__in=list(paths),
            args_kwargs__args__0__in=first_args,
        )
        return {args["args"][0] for args in live.values_list("args_kwargs", flat=True)}

    def recover_dead(self, *, lease_seconds: int, limit: int, requeue: Requeue) -> int:
        """Fail tasks RUNNING longer than the lease; `requeue` each (on commit).
        Rows are taken with SKIP LOCKED: two sweepers never recover one task twice."""
        from django_tasks_db.models import DBTaskResult

        now = timezone.now()
        with transaction.atomic():
            stale = list(
                DBTaskResult.objects.select_for_update(skip_locked=True)
                .filter(
                    status=TaskResultStatus.RUNNING,
                    started_at__lt=now - timedelta(seconds=lease_seconds),
                )
                .order_by("started_at")[:limit]
            )
            for result in stale:
                result.status = TaskResultStatus.FAILED
                result.finished_at = now
                result.exception_class_path = LEASE_EXPIRED
                result.traceback = _presumed_dead(str(result.worker_ids[-1:]), lease_seconds)
                result.save(
                    update_fields=["status", "finished_at", "exception_class_path", "traceback"]
                )
                args_kwargs = result.args_kwargs
                transaction.on_commit(
                    partial(
                        requeue,
                        result.task_path,
                        args_kwargs.get("args", []),
                        args_kwargs.get("kwargs", {}),
                    )
                )
        return len(stale)

    def _worker_args(self, queue_names: list[str], worker_id: str | None) -> list[str]:
        args = ["--no-reload", "--no-startup-delay", f"--queue-name={','.join(queue_names)}"]
        return args + ([f"--worker-id={worker_id}"] if worker_id else [])

    def work(self, *, queue_names: list[str], worker_id: str | None, interval: float) -> None:
        """db_worker with its signal handling (SIGTERM/SIGINT: finish the task, stop)."""
        call_command(
            "db_worker", *self._worker_args(queue_names, worker_id), f"--interval={interval}"
        )

    def work_burst(self, *, queue_names: list[str], worker_id: str | None) -> None:
        call_command("db_worker", *self._worker_args(queue_names, worker_id), "--batch")


class RQEngine:
    """RQ on Redis through django-tasks-rq."""

    name = "django_tasks_rq.RQBackend"
    # Jobs looked at to tell whether an order already has a task waiting; a longer
    # queue is not read through (a duplicate task is harmless: it finds the order done).
    SCAN_LIMIT = 10_000
    # How often the worker cleans RQ's registries and takes over the scheduler of a
    # dead worker (RQ's default is 10 minutes).
    MAINTENANCE_SECONDS = 60
    # The worker's blocking pop waits this less 15 s, and its connection times out
    # 10 s after that: a Redis that stopped answering is noticed within ~30 s
    # (RQ's default, 420 s, would keep the worker waiting for 7 minutes).
    WORKER_TTL_SECONDS = 35

    def _queues(self, names: list[str] | None = None) -> list[Any]:
        import django_rq
        from django_tasks_rq.backend import Job

        return [django_rq.get_queue(name, job_class=Job) for name in (names or settings.RQ_QUEUES)]

    def backlog(self) -> Backlog:
        from rq.job import Job

        now = timezone.now().timestamp()
        ready, since = 0, []
        for queue in self._queues():
            redis = queue.connection
            ready += queue.count
            head = queue.get_job_ids(0, 1)
            if head and (job := Job.fetch_many(head, connection=redis)[0]) and job.enqueued_at:
                since.append(_aware(job.enqueued_at))
            # Delayed jobs that are due, not yet moved onto the queue by the scheduler.
            key = queue.scheduled_job_registry.key
            if due := redis.zrangebyscore(key, 0, now, start=0, num=1, withscores=True):
                ready += redis.zcount(key, 0, now)
                since.append(datetime.fromtimestamp(due[0][1], tz=UTC))
        return Backlog(ready=ready, oldest_ready_at=min(since, default=None))

    def queued_first_args(
        self, paths: Iterable[str], first_args: list[int], *, lease_seconds: int
    ) -> set[int]:
        """Of `first_args`, those a job of one of `paths` was given first that is
        queued, scheduled, being dequeued, or started less than the lease ago (one
        started longer ago has a dead worker, as on the database engine, and is
        `recover_dead`'s). Read in one MULTI, so a job moving from the queue to a
        worker is seen in one place or the other, never in neither."""
        from rq.job import Job
        from rq.utils import parse_composite_key

        wanted, paths, found = set(first_args), set(paths), set()
        cutoff = timezone.now() - timedelta(seconds=lease_seconds)
        for queue in self._queues():
            with queue.connection.pipeline() as pipe:
                pipe.lrange(queue.key, 0, self.SCAN_LIMIT - 1)
                pipe.zrange(queue.scheduled_job_registry.key, 0, self.SCAN_LIMIT - 1)
                pipe.lrange(queue.intermediate_queue_key, 0, -1)
                pipe.zrange(queue.started_job_registry.key, 0, -1)
                queued, scheduled, dequeuing, started = pipe.execute()
            waiting = {i.decode() for i in queued + scheduled + dequeuing}
            running = {parse_composite_key(e.decode())[0] for e in started}
            for job in Job.fetch_many(list(waiting | running), connection=queue.connection):
                first = job.args[0] if job is not None and job.args else None
                if first not in wanted or job is None or job.func_name not in paths:
                    continue
                if job.id in waiting or (job.started_at and _aware(job.started_at) >= cutoff):
                    found.add(first)
        return found

    def recover_dead(self, *, lease_seconds: int, limit: int, requeue: Requeue) -> int:
        """Fail jobs started longer than the lease ago (their worker is presumed dead,
        as on the database engine) and `requeue` each. A job is claimed for recovery
        with SET NX first: two sweepers never recover one job twice."""
        from rq.job import Job, JobStatus
        from rq.job_lifecycle import record_job_failure
        from rq.utils import parse_composite_key

        cutoff = timezone.now() - timedelta(seconds=lease_seconds)
        recovered = 0
        for queue in self._queues():
            redis, registry = queue.connection, queue.started_job_registry
            entries: dict[str, list[bytes]] = {}  # job id -> its {job id}:{execution id} entries
            for entry in redis.zrange(registry.key, 0, -1):
                job_id, _ = parse_composite_key(entry.decode())
                entries.setdefault(job_id, []).append(entry)
            for job in Job.fetch_many(list(entries), connection=redis):
                if recovered >= limit:
                    return recovered
                if job is None or job.get_status(refresh=False) != JobStatus.STARTED:
                    continue
                if job.started_at is None or _aware(job.started_at) >= cutoff:
                    continue
                if not redis.set(f"starship:rq-recovered:{job.id}", "1", nx=True, ex=86_400):
                    continue  # another sweeper has it
                with redis.pipeline() as pipe:
                    pipe.zrem(registry.key, *entries[job.id])
                    record_job_failure(
                        job, _presumed_dead(job.worker_name or "?", lease_seconds), pipe
                    )
                    pipe.execute()
                requeue(job.func_name or "", list(job.args), dict(job.kwargs))
                recovered += 1
        return recovered

    def _worker(self, queue_names: list[str], worker_id: str | None, round_: int = 1) -> Any:
        from django_tasks_rq.backend import Job
        from rq import SimpleWorker

        queues = self._queues(queue_names)
        return SimpleWorker(
            queues,
            connection=queues[0].connection,
            job_class=Job,
            # RQ refuses a name whose registration has not expired yet (worker_ttl):
            # that of a SIGKILLed process started again under its --worker-id, or of
            # this process's loop before Redis went away. Each gets a name of its own.
            name=f"{worker_id}.{os.getpid()}.{round_}" if worker_id else None,
            maintenance_interval=self.MAINTENANCE_SECONDS,
            worker_ttl=self.WORKER_TTL_SECONDS,
        )

    def work(self, *, queue_names: list[str], worker_id: str | None, interval: float) -> None:
        """An RQ SimpleWorker until SIGTERM/SIGINT (which let the job in hand finish),
        with the scheduler in a thread of this process. A worker loop that gave up
        on Redis is started again."""
        import redis

        stop = threading.Event()
        scheduler = threading.Thread(
            target=self._schedule_forever,
            args=(stop, queue_names),
            name="rq-scheduler",
            daemon=True,
        )
        scheduler.start()
        level = logging.getLevelName(logger.getEffectiveLevel())
        try:
            for round_ in itertools.count(1):
                worker = self._worker(queue_names, worker_id, round_)
                try:
                    worker.work(logging_level=level)
                except redis.exceptions.RedisError as exc:
                    logger.error("RQ worker lost Redis (%s); starting again", type(exc).__name__)
                if worker._stop_requested:
                    return
                stop.wait(max(interval, 1.0))
        finally:
            stop.set()
            scheduler.join(timeout=5)

    def _schedule_forever(self, stop: threading.Event, queue_names: list[str]) -> None:
        """RQ's scheduler, run in a thread rather than RQ's forked process (a fork of
        this multi-threaded worker would outlive a SIGKILL holding its database
        sockets): each second the scheduler holding a queue's lock moves the
        delayed jobs that are due onto it; another worker takes the lock over once a
        dead one's expires."""
        from rq.scheduler import RQScheduler

        queues = self._queues(queue_names)
        scheduler = RQScheduler(queues, connection=queues[0].connection)
        try:
            while not stop.is_set():
                try:
                    if not scheduler.acquired_locks or scheduler.should_reacquire_locks:
                        scheduler.acquire_locks()
                    if scheduler.acquired_locks:
                        scheduler.heartbeat()
                        scheduler.enqueue_scheduled_jobs()
                except Exception:
                    logger.exception("RQ scheduler round failed; trying again")
                stop.wait(scheduler.interval)
        finally:
            try:
                scheduler.release_locks()
            except Exception:
                logger.warning("RQ scheduler could not release its locks; they expire")

    def work_burst(self, *, queue_names: list[str], worker_id: str | None) -> None:
        """Run every ready job (and every delayed one that is due), then return."""
        self._worker(queue_names, worker_id).work(burst=True, with_scheduler=True)


def current() -> TaskEngine:
    """The engine of TASKS["default"]."""
    backend = task_backends["default"]
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    from django_tasks_db.backend import DatabaseBackend

    if isinstance(backend, DatabaseBackend):
        return DatabaseEngine()
    if name.startswith("django_tasks_rq."):
        return RQEngine()
    raise LookupError(f"No task engine for {name}: use django-tasks-db or django-tasks-rq.")
