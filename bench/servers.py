"""Benchmark servers: gunicorn and the worker as child processes, and API tokens.

    with servers.gunicorn(DATABASE_URL, port=8765, workers=2) as server, \\
            servers.worker(DATABASE_URL):
        token = servers.api_token(server.base_url, client_id=client.pk)
        ...
        server.worker_peak_rss_mb()

Both run with DJANGO_SETTINGS_MODULE=bench.settings (never throttled, DEBUG
off), bound to 127.0.0.1, logging to a file under a temporary directory (its
path is on the returned object; it is deleted on exit). Children live in
their own process group and are stopped on exit from the `with` block, even
on an exception or Ctrl-C: SIGTERM to the group, SIGKILL after a timeout.
They also get SIGTERM if the thread that started them dies (PR_SET_PDEATHSIG),
so start them from the main thread; an atexit hook stops any still running.
Call `stop_on_sigterm()` in a script's main so SIGTERM unwinds the `with`
blocks as Ctrl-C does.

Smoke test by hand (a migrated database with at least one order):

    .venv/bin/python bench/servers.py --database-url postgres://postgres@127.0.0.1:5432/h_load
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"
SETTINGS_MODULE = "bench.settings"
READY_PATH = "/bench/constant.json"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1

_live: list[subprocess.Popen[bytes]] = []
_worker_numbers = itertools.count(1)  # worker ids stay unique across worker() calls


# --- child processes --------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM me when the thread that forked me dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the `with` blocks and atexit still stop the children


def _bench_env(database_url: str, redis_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["DATABASE_URL"] = database_url
    env["DJANGO_DEBUG"] = "0"
    # Plain HTTP on 127.0.0.1: opt out of the HTTPS defaults (bench.settings does too).
    env.update(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SECURE_COOKIES="0")
    env["PYTHONUNBUFFERED"] = "1"
    if redis_url is not None:  # None: inherit REDIS_URL (or its absence) from this process
        if redis_url:
            env["REDIS_URL"] = redis_url
        else:
            env.pop("REDIS_URL", None)
    return env


def _spawn(argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it
            preexec_fn=_die_with_parent,
        )
    _live.append(process)
    return process


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # The group was created by start_new_session for this child alone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the child's process group, SIGKILL it after `timeout` seconds."""
    try:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=timeout)
        # Workers of a master that exited first may still be in the group.
        _signal_group(process, signal.SIGKILL)
    finally:
        if process in _live:
            _live.remove(process)


@atexit.register
def _stop_all() -> None:
    for process in list(_live):
        _stop(process, timeout=3.0)


def stop_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit (as Ctrl-C raises KeyboardInterrupt), so
    every `with servers.…` block unwinds and stops its children."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


@contextlib.contextmanager
def _log_directory(log_dir: str | Path | None, prefix: str) -> Iterator[Path]:
    """`log_dir` (kept), or a temporary directory deleted on exit."""
    if log_dir is not None:
        path = Path(log_dir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def _log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _check_port_free(port: int) -> None:
    if not 1024 <= port <= 65535:
        raise ValueError(f"port {port} is not an unprivileged port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: TIME_WAIT leftovers of an earlier run do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            # Something else answers there: measuring it would measure the wrong server.
            raise RuntimeError(f"{HOST}:{port} is already in use") from None


# --- /proc ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(p) for p in listed)
    except OSError:
        pass
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _status_mb(pid: int, key: str) -> float | None:
    """A kB value from /proc/<pid>/status (VmHWM, VmRSS) in MB, or None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _processes_mb(pids: list[int], key: str) -> list[float]:
    values = (_status_mb(pid, key) for pid in pids)
    return [round(v, 1) for v in values if v is not None]


# --- gunicorn ---------------------------------------------------------------


@dataclass
class Server:
    """A running gunicorn: where it answers and how big its workers are."""

    base_url: str
    master_pid: int
    workers: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def worker_pids(self) -> list[int]:
        return _children(self.master_pid)

    def worker_peak_rss_mb(self) -> list[float]:
        """Peak resident memory (VmHWM) of each gunicorn worker, in MB."""
        return _processes_mb(self.worker_pids(), "VmHWM")

    def worker_rss_mb(self) -> list[float]:
        """Current resident memory (VmRSS) of each gunicorn worker, in MB."""
        return _processes_mb(self.worker_pids(), "VmRSS")


def _get_status(base_url: str, path: str, timeout: float = 2.0) -> int | None:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(
    database_url: str,
    *,
    port: int = 8765,
    workers: int = 2,
    redis_url: str | None = None,
    timeout: float = START_TIMEOUT_S,
    log_dir: str | Path | None = None,
) -> Iterator[Server]:
    """gunicorn serving starship.wsgi with bench settings on 127.0.0.1:`port`.

    As docs/deploy.md runs it: `gunicorn starship.wsgi --workers N`, sync
    workers (gunicorn's default class), no --preload, no access log. Yields
    once /bench/constant.json answers 200. `redis_url`: None inherits
    REDIS_URL from this process's environment, "" forces the local-memory
    cache (per worker), a URL sets it (shared rate-limit and credential cache,
    as production with several workers needs). `log_dir`: keep gunicorn.log
    there (default: a temporary directory, deleted on exit).
    """
    _check_port_free(port)
    with _log_directory(log_dir, "bench-gunicorn-") as logs:
        log_path = logs / f"gunicorn-{port}.log"
        argv = [
            str(VENV_BIN / "gunicorn"),
            "starship.wsgi",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ]
        process = _spawn(argv, env=_bench_env(database_url, redis_url), log_path=log_path)
        server = Server(
            base_url=f"http://{HOST}:{port}",
            master_pid=process.pid,
            workers=workers,
            log_path=log_path,
            process=process,
        )
        try:
            _wait_until_serving(server, timeout=timeout)
            yield server
        finally:
            _stop(process)


def _wait_until_serving(server: Server, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}:\n{_log_tail(server.log_path)}"
            )
        if (
            _get_status(server.base_url, READY_PATH) == 200
            and len(server.worker_pids()) >= server.workers
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"gunicorn did not answer within {timeout:.0f} s:\n{_log_tail(server.log_path)}"
    )


# --- the worker -------------------------------------------------------------


@dataclass
class Worker:
    """Running `manage.py run_worker` processes."""

    pids: list[int]
    log_paths: list[Path]

    def peak_rss_mb(self) -> list[float]:
        return _processes_mb(self.pids, "VmHWM")


@contextlib.contextmanager
def worker(
    database_url: str,
    *,
    processes: int = 1,
    interval: float = 0.1,
    redis_url: str | None = None,
    timeout: float = START_TIMEOUT_S,
    log_dir: str | Path | None = None,
) -> Iterator[Worker]:
    """`manage.py run_worker --interval <interval>` with bench settings.

    scripts/run.sh polls every 0.5 s when idle; 0.1 s here so an order placed
    on an idle queue waits less. Under load db_worker does not sleep between
    tasks, so the interval does not cap throughput. Yields once each process
    has logged that its worker loop started; stopped on exit (db_worker
    finishes the task in hand on SIGTERM). `log_dir` as for gunicorn().
    """
    with _log_directory(log_dir, "bench-worker-") as logs:
        started: list[subprocess.Popen[bytes]] = []
        log_paths = []
        try:
            for number in itertools.islice(_worker_numbers, processes):
                log_path = logs / f"worker-{number}.log"
                argv = [
                    str(VENV_BIN / "python"),
                    "manage.py",
                    "run_worker",
                    f"--interval={interval}",
                    f"--worker-id=bench-{os.getpid()}-{number}",
                ]
                env = _bench_env(database_url, redis_url)
                started.append(_spawn(argv, env=env, log_path=log_path))
                log_paths.append(log_path)
            _wait_until_working(started, log_paths, timeout=timeout)
            yield Worker(pids=[p.pid for p in started], log_paths=log_paths)
        finally:
            for process in started:
                _stop(process)


def _wait_until_working(
    started: list[subprocess.Popen[bytes]], log_paths: list[Path], *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(zip(log_paths, started, strict=True))
    while waiting and time.monotonic() < deadline:
        for log_path, process in list(waiting.items()):
            if process.poll() is not None:
                raise RuntimeError(
                    f"run_worker exited with {process.returncode}:\n{_log_tail(log_path)}"
                )
            with contextlib.suppress(OSError):
                if "Starting worker" in log_path.read_text(errors="replace"):
                    del waiting[log_path]
        time.sleep(0.05)
    if waiting:
        raise RuntimeError(
            f"run_worker did not start within {timeout:.0f} s:\n{_log_tail(next(iter(waiting)))}"
        )


# --- API tokens -------------------------------------------------------------


def token_exchange(base_url: str, *, api_key: str, api_secret: str) -> str:
    """POST /api/v1/auth/token: key + secret -> Bearer token. Errors never echo either."""
    parts = urlsplit(base_url)
    if parts.hostname not in (HOST, "localhost"):
        raise ValueError("benchmarks talk to 127.0.0.1 only")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/v1/auth/token",
            body=json.dumps({"api_key": api_key, "api_secret": api_secret}),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        try:
            error = json.loads(body).get("error", "?")
        except ValueError:
            error = "not JSON"
        raise RuntimeError(f"POST /api/v1/auth/token answered {response.status} ({error})")
    return str(json.loads(body)["access_token"])


def api_token(base_url: str, *, client_id: int) -> str:
    """A Bearer token for a new credential of client `client_id`.

    Needs Django set up in this process against the server's database: the
    credential is issued here with credential_issue, then exchanged over HTTP.
    Never print the result.
    """
    from orders.models import Client
    from orders.services.actors import Actor
    from orders.services.clients import credential_issue

    client = Client.objects.get(pk=client_id)
    issued = credential_issue(client=client, actor=Actor.system("bench"), label="bench")
    return token_exchange(base_url, api_key=issued.credential.public_key, api_secret=issued.secret)


# --- smoke test ---------------------------------------------------------------


def django_setup(database_url: str) -> None:
    """Set up Django in this process with bench settings against `database_url`."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    os.environ["DATABASE_URL"] = database_url
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Smoke-test gunicorn + worker + loadgen.")
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/h_load", help="migrated"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--redis-url", default=None, help='"" = local-memory cache')
    args = parser.parse_args()

    stop_on_sigterm()
    django_setup(args.database_url)
    from bench.loadgen import run_load
    from orders.enums import OrderStatus
    from orders.models import Order

    order = (
        Order.objects.filter(status=OrderStatus.DELIVERED).order_by("-pk").first()
        or Order.objects.order_by("-pk").first()
    )
    if order is None:
        raise SystemExit("no order in that database: run manage.py seed_demo first")
    with (
        gunicorn(
            args.database_url, port=args.port, workers=args.workers, redis_url=args.redis_url
        ) as server,
        worker(args.database_url, redis_url=args.redis_url) as running,
    ):
        print(f"gunicorn master {server.master_pid}, workers {server.worker_pids()}")
        print(f"run_worker pids {running.pids}")
        token = api_token(server.base_url, client_id=order.client_id)
        auth = {"Authorization": f"Bearer {token}"}
        for label, path, headers in [
            ("constant view", "/bench/constant.json", {}),
            (f"GET order {order.pk} ({order.status})", f"/api/v1/orders/{order.pk}", auth),
        ]:
            result = run_load(
                server.base_url + path,
                headers=headers,
                concurrency=args.concurrency,
                duration=args.duration,
                warmup=1,
            )
            print(f"{label}: {json.dumps(result)}")
        print(f"worker RSS now {server.worker_rss_mb()} MB, peak {server.worker_peak_rss_mb()} MB")
        print(f"run_worker peak RSS {running.peak_rss_mb()} MB")
    print("stopped")


if __name__ == "__main__":
    _main()
