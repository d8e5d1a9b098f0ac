"""gunicorn masters started by a test: production settings, the test database,
each on its own port and with its own temp directory (two hosts)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx

from tests.helpers.net import free_port
from tests.helpers.tasks import BASE_DIR, wait_until, worker_env


def _answers(server: subprocess.Popen[bytes], url: str) -> bool:
    assert server.poll() is None, "gunicorn exited at start"
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def gunicorn_hosts(tmp_path: Path, count: int = 1, **env: str) -> Iterator[list[str]]:
    """`count` gunicorn masters with the deploy config, one worker each; yields their
    base URLs, stops them afterwards."""
    environ = worker_env(
        DJANGO_DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        SECURE_COOKIES="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(tmp_path / "static"),
        WEB_CONCURRENCY="1",
        **env,
    )
    servers, urls = [], []
    try:
        for n in range(1, count + 1):
            port = free_port()
            tmp = tmp_path / f"host-{n}-tmp"  # each host its own disk, as two machines
            tmp.mkdir()
            log = (tmp_path / f"gunicorn-{n}.log").open("wb")
            servers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "--config",
                        "deploy/gunicorn.conf.py",  # as docs/deploy.md runs it
                        "--bind",
                        f"127.0.0.1:{port}",
                    ],
                    cwd=BASE_DIR,
                    env={**environ, "TMPDIR": str(tmp)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for server, url in zip(servers, urls, strict=True):
            wait_until(
                partial(_answers, server, url), timeout=60, what=f"gunicorn on {url} to answer"
            )
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
