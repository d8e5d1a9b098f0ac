"""Per-credential rate limits: fixed-window counters in Django's cache.

Each window is one cache key per (credential, window start), created with
`cache.add` and counted with `cache.incr` — atomic on Redis, so the limits
hold across gunicorn workers. Every authenticated response carries
X-RateLimit-Limit / -Remaining / -Reset for the tightest window; a refused
request gets 429 `rate_limited` with Retry-After.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseBase

from orders.errors import RateLimited

_STATE_ATTR = "_api_rate_windows"


@dataclass(frozen=True)
class Window:
    name: str
    limit: int
    seconds: int
    count: int
    reset_in: int  # seconds until this window starts over

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit


def _hit(*, scope: str, name: str, limit: int, seconds: int) -> Window:
    now = time.time()
    start = int(now // seconds) * seconds
    key = f"api:rl:{scope}:{name}:{start}"
    # The key outlives its window a little so a late incr never recreates it.
    cache.add(key, 0, timeout=seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 0, timeout=seconds + 5)
        count = cache.incr(key)
    reset_in = max(1, math.ceil(start + seconds - now))
    return Window(name=name, limit=limit, seconds=seconds, count=count, reset_in=reset_in)


def _check(request: HttpRequest, windows: list[Window]) -> None:
    state: list[Window] = getattr(request, _STATE_ATTR, [])
    state.extend(windows)
    setattr(request, _STATE_ATTR, state)
    exceeded = [w for w in windows if w.exceeded]
    if exceeded:
        retry_after = max(w.reset_in for w in exceeded)
        raise RateLimited(
            f"Rate limit exceeded ({exceeded[0].limit} requests per {exceeded[0].seconds} s); "
            f"retry in {retry_after} s.",
            retry_after=retry_after,
        )


def credential_hit(request: HttpRequest, *, credential_id: int) -> None:
    """Count one request of a credential; raise RateLimited over 200/min or 20/10 s."""
    scope = f"c{credential_id}"
    _check(
        request,
        [
            _hit(scope=scope, name="minute", limit=settings.API_RATE_LIMIT_PER_MINUTE, seconds=60),
            _hit(
                scope=scope, name="burst", limit=settings.API_RATE_LIMIT_PER_10_SECONDS, seconds=10
            ),
        ],
    )


def order_read_hit(request: HttpRequest, *, credential_id: int, order_id: int) -> None:
    """Count one read of one order; raise RateLimited over 60 reads per hour."""
    _check(
        request,
        [
            _hit(
                scope=f"c{credential_id}:o{order_id}",
                name="order",
                limit=settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR,
                seconds=3600,
            )
        ],
    )


def add_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    """X-RateLimit-* for the tightest window counted on this request, if any."""
    windows: list[Window] = getattr(request, _STATE_ATTR, [])
    if not windows:
        return
    tightest = min(windows, key=lambda w: (w.remaining, -w.reset_in))
    response["X-RateLimit-Limit"] = str(tightest.limit)
    response["X-RateLimit-Remaining"] = str(tightest.remaining)
    response["X-RateLimit-Reset"] = str(tightest.reset_in)
