"""Worker heartbeats: each `run_worker` process records that it is alive."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from orders.models import WorkerHeartbeat

# A stopped worker's row is kept this long, so /readyz and the admin can say
# when it stopped, then pruned by the next beat of any worker.
KEEP_STOPPED = timedelta(days=7)


@dataclass
class Heart:
    """One worker process's identity and the time of its last beat."""

    worker_id: str
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=timezone.now)
    last_beat: datetime | None = None

    @classmethod
    def for_process(cls, worker_id: str | None = None) -> Heart:
        hostname, pid = socket.gethostname(), os.getpid()
        return cls(worker_id=worker_id or f"{hostname}:{pid}", hostname=hostname, pid=pid)

    def beat(self, *, every: float) -> bool:
        """Record the beat if `every` seconds have passed since the last one (one
        UPDATE or INSERT; the first beat also prunes long-stopped workers)."""
        now = timezone.now()
        if self.last_beat is not None and (now - self.last_beat).total_seconds() < every:
            return False
        first = self.last_beat is None
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={"seen_at": now},
            create_defaults={
                "hostname": self.hostname[:255],
                "pid": self.pid,
                "started_at": self.started_at,
                "seen_at": now,
            },
        )
        if first:
            WorkerHeartbeat.objects.filter(seen_at__lt=now - KEEP_STOPPED).delete()
        self.last_beat = now
        return True
