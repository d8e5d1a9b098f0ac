"""What the running system says about itself: the workers' heartbeats."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One `run_worker` process: when it started and when it last reached the
    database. `/readyz` reports the newest beat's age; a stopped worker's row
    stays (its last beat says when it stopped) until the sweep prunes it."""

    worker_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return self.worker_id
