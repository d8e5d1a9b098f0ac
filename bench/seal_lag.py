"""The audit seal lag, sampled while a load runs.

    with SealLag(database_url) as lag:
        run_load(...)
    lag.result()  # {"available": True, "samples": 60, "backlog_max": ..., ...}

A thread on its own autocommit connection runs, every `interval` seconds,

    SELECT count(*), min(created_at) FROM orders_auditevent WHERE sealed_at IS NULL

(the raw equivalent of `orders.selectors.audit.audit_seal_lag()`): the events
not sealed yet and the age of the oldest. When the table has no `sealed_at`
column (a schema from before the sealer), `available` is False and nothing is
sampled.
"""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType

import psycopg

from bench.common import percentile, rounded

SAMPLE_SQL = (
    "SELECT count(*), EXTRACT(EPOCH FROM (clock_timestamp() - min(created_at))) "
    "FROM orders_auditevent WHERE sealed_at IS NULL"
)
HAS_COLUMN_SQL = (
    "SELECT 1 FROM information_schema.columns "
    "WHERE table_name = 'orders_auditevent' AND column_name = 'sealed_at'"
)


class SealLag:
    def __init__(self, database_url: str, *, interval: float = 0.25) -> None:
        self.database_url = database_url
        self.interval = interval
        self.counts: list[int] = []
        self.ages: list[float] = []
        self.available = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def __enter__(self) -> SealLag:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            self.available = conn.execute(HAS_COLUMN_SQL).fetchone() is not None
        if self.available:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _sample(self) -> None:
        try:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                while not self._stop.is_set():
                    started = time.perf_counter()
                    row = conn.execute(SAMPLE_SQL).fetchone()
                    assert row is not None
                    self.counts.append(int(row[0]))
                    self.ages.append(float(row[1]) if row[1] is not None else 0.0)
                    self._stop.wait(max(0.0, self.interval - (time.perf_counter() - started)))
        except psycopg.Error as exc:  # the load goes on; the figure says it is incomplete
            self._error = type(exc).__name__

    def result(self) -> dict[str, object]:
        """Backlog (events) and age (seconds) of the unsealed events: median, p95, max."""
        if not self.available:
            return {"available": False}
        counts = [float(c) for c in self.counts]
        return {
            "available": True,
            "samples": len(counts),
            "interval_s": self.interval,
            "error": self._error,
            "backlog_median": rounded(statistics.median(counts)) if counts else None,
            "backlog_p95": rounded(percentile(counts, 0.95)),
            "backlog_max": rounded(max(counts, default=None)),
            "age_median_s": rounded(statistics.median(self.ages)) if self.ages else None,
            "age_p95_s": rounded(percentile(self.ages, 0.95)),
            "age_max_s": rounded(max(self.ages, default=None)),
        }
