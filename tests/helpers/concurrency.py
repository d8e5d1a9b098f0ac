"""Running one piece of code from several threads at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def at_once[T](target: Callable[[], T], count: int, *, timeout: float = 60) -> list[T]:
    """Run `target` in `count` threads released together; their results, in the
    order they finished. Each thread closes its own database connection."""
    results: list[T] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        try:
            result = target()
            with lock:
                results.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
