"""HTTP load generator: N concurrent connections GET one URL for a fixed time.

Runs as its own process (so its CPU is not the measured server's, nor the
benchmark driver's) and prints one JSON line:

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8765/api/v1/orders/1 \\
        --header 'Authorization: Bearer …' --concurrency 8 --duration 10 --warmup 2

    {"requests": 5120, "ok": 5120, "errors": 0, "error_counts": {}, "rps": 512.0,
     "p50_ms": 15.1, "p95_ms": 22.3, ...}

`requests` counts every response or failure completed in the measured window
(after the warm-up); `errors` those that were not 2xx or raised, with a count
per status code or exception name in `error_counts`. `rps` and the latency
percentiles are of the 2xx responses only, so fast failures cannot flatter
them. A latency includes connecting when the server closed the previous
connection (gunicorn's sync workers close after every response).

Bounded: at most --duration (<= 600 s) after --warmup (<= 60 s), at most
--max-requests responses, and each request times out after --timeout s.
127.0.0.1/localhost only. Header values (tokens) are never printed; from
Python use `run_load`, which passes them on stdin so they do not show in the
process list either.

One thread per connection, blocking sockets and a minimal HTTP/1.1 reader:
standard library only, and about 0.1 ms of CPU per request (half of what an
asyncio-streams client costs), which matters when the load generator shares
two cores with the server it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import percentile, rounded  # noqa: E402

ALLOWED_HOSTS = ("127.0.0.1", "localhost")
MAX_DURATION_S = 600.0
MAX_WARMUP_S = 60.0
MAX_CONCURRENCY = 256
DEFAULT_MAX_REQUESTS = 2_000_000
USER_AGENT = "starship-bench-loadgen"
RECV_BYTES = 65536
MAX_HEAD_BYTES = 65536


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    error_counts: Counter[str] = field(default_factory=Counter)
    last_done: float = 0.0


class ResponseError(Exception):
    """The server's answer could not be read as HTTP/1.1."""


class ConnectionClosed(Exception):
    """The server closed the connection before the response was complete."""


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        # Never echo the text: it may be "Authorization: Bearer …".
        raise SystemExit("a header must look like 'Name: value'")
    return name.strip(), value.strip()


def _request_bytes(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"User-Agent: {USER_AGENT}",
        "Accept: application/json",
        "Connection: keep-alive",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    for line in lines:
        if "\r" in line or "\n" in line:
            raise SystemExit("header names and values must not contain line breaks")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection:
    """One keep-alive HTTP/1.1 connection on a blocking socket, reopened when closed."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _more(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionClosed("closed by the server")
        self.buffer += data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ResponseError("line too long")
            self._more()
        return self._take(end + 2)[:-2]

    def get(self, request: bytes) -> int:
        """Send one request, read its whole response; the status code."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise ResponseError("response head too long")
            self._more()
        head = self._take(end + 4)[:-4].decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ResponseError("bad status line")
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        if status < 200 or status in (204, 304):
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            while (size := int(self._line().split(b";", 1)[0].strip() or b"0", 16)) > 0:
                self._take(size + 2)
            while self._line():
                pass  # trailers, up to the blank line
        elif "content-length" in headers:
            self._take(int(headers["content-length"]))
        else:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    self._more()  # the body runs until the server closes
            keep_alive = False
        if not keep_alive:
            self.close()
        return status


def _connection_loop(
    *,
    host: str,
    port: int,
    request: bytes,
    measure_from: float,
    stop_at: float,
    budget: Iterator[int],
    max_requests: int,
    timeout: float,
    stats: Stats,
) -> None:
    connection = _Connection(host, port, timeout)
    clock = time.perf_counter
    try:
        while (started := clock()) < stop_at and next(budget) < max_requests:
            outcome: str | None = None
            try:
                status = connection.get(request)
                if not 200 <= status < 300:
                    outcome = str(status)
            except (OSError, ValueError, ConnectionClosed, ResponseError) as exc:
                outcome = type(exc).__name__
                connection.close()
            done = clock()
            if started >= measure_from:
                stats.last_done = max(stats.last_done, done)
                if outcome is None:
                    stats.latencies_ms.append((done - started) * 1000)
                else:
                    stats.error_counts[outcome] += 1
            if outcome is not None and not outcome.isdigit():
                time.sleep(0.01)  # refused or reset: do not spin
    finally:
        connection.close()


def _run(
    *,
    url: str,
    headers: dict[str, str],
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int,
    timeout: float,
) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ALLOWED_HOSTS:
        raise SystemExit("loadgen only speaks plain HTTP to 127.0.0.1 / localhost")
    host, port = parts.hostname, parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    request = _request_bytes(host, port, path, headers)
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + duration
    budget = itertools.count()  # next() is atomic under the GIL
    per_thread = [Stats() for _ in range(concurrency)]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    threads = [
        threading.Thread(
            target=_connection_loop,
            kwargs={
                "host": host,
                "port": port,
                "request": request,
                "measure_from": measure_from,
                "stop_at": stop_at,
                "budget": budget,
                "max_requests": max_requests,
                "timeout": timeout,
                "stats": stats,
            },
            daemon=True,
        )
        for stats in per_thread
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    sent = next(budget)
    last_done = max(s.last_done for s in per_thread)
    elapsed = max(last_done - measure_from, 1e-9)
    latencies = sorted(ms for s in per_thread for ms in s.latencies_ms)
    error_counts: Counter[str] = Counter()
    for s in per_thread:
        error_counts.update(s.error_counts)
    errors = sum(error_counts.values())
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)

    return {
        "path": parts.path,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "error_counts": dict(error_counts),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": rounded(percentile(latencies, 0.50)),
        "p95_ms": rounded(percentile(latencies, 0.95)),
        "p99_ms": rounded(percentile(latencies, 0.99)),
        "max_ms": rounded(latencies[-1] if latencies else None),
        # The load generator shares the machine: what it costs per request, warm-up included.
        "loadgen_cpu_ms_per_request": round(cpu * 1000 / max(1, sent), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value', repeatable; never printed"
    )
    parser.add_argument(
        "--headers-stdin", action="store_true", help="read a JSON object of headers from stdin"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    parser.add_argument("--max-requests", type=int, default=DEFAULT_MAX_REQUESTS)
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    args = parser.parse_args(argv)

    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be 1..{MAX_CONCURRENCY}")
    if not 0 < args.duration <= MAX_DURATION_S or not 0 <= args.warmup <= MAX_WARMUP_S:
        parser.error(
            f"--duration must be in (0, {MAX_DURATION_S}], --warmup in [0, {MAX_WARMUP_S}]"
        )
    if not 1 <= args.max_requests <= 100 * DEFAULT_MAX_REQUESTS:
        parser.error("--max-requests out of range")
    headers = dict(_parse_header(h) for h in args.header)
    if args.headers_stdin:
        given = json.loads(sys.stdin.read() or "{}")
        if not isinstance(given, dict):
            raise SystemExit("--headers-stdin expects a JSON object")
        headers.update({str(k): str(v) for k, v in given.items()})
    result = _run(
        url=args.url,
        headers=headers,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        max_requests=args.max_requests,
        timeout=args.timeout,
    )
    print(json.dumps(result), flush=True)


def run_load(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 8,
    duration: float = 10.0,
    warmup: float = 2.0,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    timeout: float = 10.0,
) -> dict[str, object]:
    """Run this module as a separate process against `url` and return its JSON result.

    Headers go to the child on stdin, never on its command line, and are in no
    error message.
    """
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--url",
        url,
        "--headers-stdin",
        f"--concurrency={concurrency}",
        f"--duration={duration}",
        f"--warmup={warmup}",
        f"--max-requests={max_requests}",
        f"--timeout={timeout}",
    ]
    # The child stops itself after warmup + duration (+ one request timeout);
    # this bound only catches a hung child.
    limit = warmup + duration + 2 * timeout + 30
    completed = subprocess.run(
        argv,
        input=json.dumps(headers or {}),
        capture_output=True,
        text=True,
        timeout=limit,
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"loadgen exited with {completed.returncode}: {completed.stderr.strip()[-2000:]}"
        )
    lines = completed.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError("loadgen printed nothing")
    return json.loads(lines[-1])


if __name__ == "__main__":
    main()
