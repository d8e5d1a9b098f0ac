"""Per-credential rate limits: fixed-window counters in Django's cache.

Each window is one cache key per (credential, window start), created with
INCR with a TTL set on the first count — atomic on Redis, so the limits hold
across gunicorn workers, and one pipelined round trip for all of a request's
windows (other cache backends: `cache.add` + `cache.incr`). Every authenticated response carries
X-RateLimit-Limit / -Remaining / -Reset for the tightest window; a refused
request gets 429 `rate_limited` with Retry-After.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
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


def _hits(
    scope: str, specs: list[tuple[str, int, int]], *, claim: tuple[str, int] | None = None
) -> tuple[list[Window], bool]:
    """Count one request in each (name, limit, seconds) window of `scope`. With
    `claim` (key, seconds): also add that key if absent, in the same round trip;
    the second value says whether this request added it."""
    now = time.time()
    keys, windows = [], []
    for name, _, seconds in specs:
        start = int(now // seconds) * seconds
        keys.append((f"api:rl:{scope}:{name}:{start}", seconds, start))
    backend = caches[DEFAULT_CACHE_ALIAS]  # `cache` is a proxy: isinstance needs the backend
    claimed = False
    if isinstance(backend, RedisCache):
        # One round trip for every window: INCR, and a TTL on the key's first count.
        client = backend._cache.get_client(write=True)
        pipe = client.pipeline(transaction=False)
        for key, seconds, _ in keys:
            stored = backend.make_and_validate_key(key)
            pipe.incr(stored)
            pipe.expire(stored, seconds + 5, nx=True)
        if claim is not None:
            pipe.set(backend.make_and_validate_key(claim[0]), 1, ex=claim[1], nx=True)
        answers = pipe.execute()
        counts = answers[: 2 * len(keys) : 2]
        claimed = claim is not None and bool(answers[-1])
    else:
        counts = [_count(key, seconds) for key, seconds, _ in keys]
        if claim is not None:
            claimed = cache.add(claim[0], 1, timeout=claim[1])
    for (name, limit, seconds), (_, _, start), count in zip(specs, keys, counts, strict=True):
        reset_in = max(1, math.ceil(start + seconds - now))
        windows.append(
            Window(name=name, limit=limit, seconds=seconds, count=int(count), reset_in=reset_in)
        )
    return windows, claimed


def _count(key: str, seconds: int) -> int:
    cache.add(key, 0, timeout=seconds + 5)
    try:
        return cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.add(key, 0, timeout=seconds + 5)
        return cache.incr(key)


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


def credential_hit(request: HttpRequest, *, credential_id: int, claim: str | None = None) -> bool:
    """Count one request of a credential; raise RateLimited over 200/min or 20/10 s.
    With `claim`, also add that cache key for a minute if absent (same round
    trip) and return whether this request added it."""
    windows, claimed = _hits(
        f"c{credential_id}",
        [
            ("minute", settings.API_RATE_LIMIT_PER_MINUTE, 60),
            ("burst", settings.API_RATE_LIMIT_PER_10_SECONDS, 10),
        ],
        claim=(claim, 60) if claim is not None else None,
    )
    _check(request, windows)
    return claimed


def order_read_hit(request: HttpRequest, *, credential_id: int, order_id: int) -> None:
    """Count one read of one order; raise RateLimited over 60 reads per hour."""
    windows, _ = _hits(
        f"c{credential_id}:o{order_id}",
        [("order", settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR, 3600)],
    )
    _check(request, windows)


def add_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    """X-RateLimit-* for the tightest window counted on this request, if any."""
    windows: list[Window] = getattr(request, _STATE_ATTR, [])
    if not windows:
        return
    tightest = min(windows, key=lambda w: (w.remaining, -w.reset_in))
    response["X-RateLimit-Limit"] = str(tightest.limit)
    response["X-RateLimit-Remaining"] = str(tightest.remaining)
    response["X-RateLimit-Reset"] = str(tightest.reset_in)
