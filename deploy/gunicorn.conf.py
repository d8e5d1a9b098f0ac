"""gunicorn's configuration for Starship Orders: `gunicorn -c deploy/gunicorn.conf.py`.

Every value can be changed from the environment without editing this file
(docs/deploy.md, "Running it"). The WSGI app is starship.wsgi.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

wsgi_app = "starship.wsgi:application"
# Behind a load balancer or reverse proxy on the same host; 0.0.0.0:8000 to take
# traffic from a load balancer elsewhere.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: each request holds one process, CPU-bound work (decrypting
# vouchers, rendering) cannot starve others. Two per core is a start; the bench
# (docs/scaling.md) has the per-request cost to size by.
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
worker_class = "sync"
# A request held longer than this is killed and logged: the database and
# Redis time out well before (REDIS_TIMEOUT_SECONDS, the health checks).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in hand get this long to finish (a deploy drains the host
# from the load balancer first: /readyz).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Keep-alive between the load balancer and gunicorn (sync workers close after
# each response anyway; the balancer's idle timeout should be longer).
keepalive = 5
# Recycle a worker after this many requests (plus jitter, so not all at once):
# any slow growth of memory is bounded.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# The workers' heartbeat files on a RAM disk (gunicorn's advice for containers),
# not a disk that may stall under load.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# Our own request line (starship.request) replaces the access log.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "starship-web"


def on_starting(server: Any) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR before the workers start (prometheus-client
    sums the files of every worker; stale ones from the last run would count twice)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits (recycled, killed) stops counting in the live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
