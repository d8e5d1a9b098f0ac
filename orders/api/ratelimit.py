"""Per-credential rate limits: fixed-window counters in Django's cache.

Each window is one cache key per (credential, window start), created with
INCR with a TTL set on the first count — atomic on Redis, so the limits hold
across gunicorn workers (other cache backends: `cache.add` + `cache.incr`).
On Redis one script does all of a request's work in one round trip
(`credential_admit`): it reads the credential's cache entry, counts the
credential's windows, claims the once-a-minute last-use write and, for an
order read, counts the order's window — unless a credential window already
refused the request, so a refused request does not count against the order.
Every authenticated response carries X-RateLimit-Limit / -Remaining / -Reset
for the tightest window; a refused request gets 429 `rate_limited` with
Retry-After.

A credential's rate-limit plan (`ApiCredential.rate_limit_per_minute`, set in
the dashboard's clients workspace) replaces API_RATE_LIMIT_PER_MINUTE for it,
and its burst window scales in proportion (`plan_limits`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponseBase

from orders.errors import RateLimited

_STATE_ATTR = "_api_rate_windows"
_SCOPES_ATTR = "_api_rate_scopes"


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


# One round trip on Redis. KEYS: the entry to read (when ARGV[1] is "1"), one
# key per window, the claim's key (when ARGV[2] > 0). ARGV[3..]: for each
# window its TTL, limit and group; a window of a later group than one that is
# exceeded is not counted (-1). Returns the entry (or false), whether the claim
# was added, and the counts.
_ADMIT_LUA = """
local k = 1
local fetched = false
if ARGV[1] == '1' then
  fetched = redis.call('GET', KEYS[1])
  k = 2
end
local counts = {}
local refused = nil
for w = 1, (#ARGV - 2) / 3 do
  local base = 3 * w
  local group = tonumber(ARGV[base + 2])
  if refused ~= nil and group > refused then
    counts[w] = -1
  else
    local count = redis.call('INCR', KEYS[k])
    if count == 1 then
      redis.call('EXPIRE', KEYS[k], ARGV[base])
    end
    counts[w] = count
    if refused == nil and count > tonumber(ARGV[base + 1]) then
      refused = group
    end
  end
  k = k + 1
end
local claimed = 0
if tonumber(ARGV[2]) > 0 and redis.call('SET', KEYS[k], '1', 'EX', ARGV[2], 'NX') then
  claimed = 1
end
return {fetched, claimed, counts}
"""
_registered: list[Any] = []  # the script object, made once (it runs on any client)


def _script(client: Any) -> Any:
    if not _registered:
        _registered.append(client.register_script(_ADMIT_LUA))
    return _registered[0]


@dataclass(frozen=True)
class _Spec:
    scope: str
    name: str
    limit: int
    seconds: int
    group: int  # counted only while no window of an earlier group is exceeded

    def key(self, now: float) -> tuple[str, int]:
        start = int(now // self.seconds) * self.seconds
        return f"api:rl:{self.scope}:{self.name}:{start}", start


@dataclass(frozen=True)
class Admission:
    """What one round trip counted: the entry read (None: absent), whether the
    claim was added, and the windows counted (not those skipped)."""

    fetched: Any
    claimed: bool
    windows: list[Window]
    scopes: frozenset[str]  # of the windows counted

    def under_plan(self, per_minute: int | None) -> Admission:
        """These counts held to a credential's plan (`plan_limits`), for a caller
        that learns the plan in the same round trip that counted (a token's)."""
        if per_minute is None:
            return self
        limits = dict(zip(("minute", "burst"), plan_limits(per_minute), strict=True))
        windows = [
            replace(w, limit=limits[w.name]) if w.name in limits else w for w in self.windows
        ]
        return replace(self, windows=windows)

    def check(self, request: HttpRequest) -> None:
        """Raise RateLimited if a counted window is exceeded; remember them for
        the response's headers and for `order_read_hit`."""
        counted: set[str] = getattr(request, _SCOPES_ATTR, set())
        setattr(request, _SCOPES_ATTR, counted | self.scopes)
        _check(request, self.windows)


def _count_all(
    specs: list[_Spec], *, fetch: str | None = None, claim: tuple[str, int] | None = None
) -> Admission:
    now = time.time()
    keys = [spec.key(now) for spec in specs]
    backend = caches[DEFAULT_CACHE_ALIAS]  # `cache` is a proxy: isinstance needs the backend
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        script = _script(client)
        script_keys = [backend.make_and_validate_key(fetch)] if fetch is not None else []
        script_keys += [backend.make_and_validate_key(key) for key, _ in keys]
        args: list[Any] = ["1" if fetch is not None else "0", claim[1] if claim else 0]
        for spec in specs:
            args += [spec.seconds + 5, spec.limit, spec.group]
        if claim is not None:
            script_keys.append(backend.make_and_validate_key(claim[0]))
        raw, claimed_flag, counts = script(keys=script_keys, args=args, client=client)
        serializer = backend._cache._serializer  # type: ignore[attr-defined]  # Django's own
        fetched = serializer.loads(raw) if raw else None
        claimed = bool(claimed_flag)
    else:
        fetched = cache.get(fetch) if fetch is not None else None
        counts, refused = [], None
        for spec, (key, _) in zip(specs, keys, strict=True):
            if refused is not None and spec.group > refused:
                counts.append(-1)
                continue
            counts.append(_count(key, spec.seconds))
            if refused is None and counts[-1] > spec.limit:
                refused = spec.group
        claimed = claim is not None and cache.add(claim[0], 1, timeout=claim[1])
    windows, scopes = [], set()
    for spec, (_, start), count in zip(specs, keys, counts, strict=True):
        if count < 0:
            continue
        reset_in = max(1, math.ceil(start + spec.seconds - now))
        windows.append(
            Window(
                name=spec.name,
                limit=spec.limit,
                seconds=spec.seconds,
                count=int(count),
                reset_in=reset_in,
            )
        )
        scopes.add(spec.scope)
    return Admission(fetched=fetched, claimed=claimed, windows=windows, scopes=frozenset(scopes))


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


def plan_limits(per_minute: int | None) -> tuple[int, int]:
    """A credential's (per minute, per 10 seconds) limits: its plan, else the
    settings. A plan scales the burst window in proportion (at least 1), so a
    plan above the default is not capped by the default burst."""
    minute, burst = settings.API_RATE_LIMIT_PER_MINUTE, settings.API_RATE_LIMIT_PER_10_SECONDS
    if per_minute is None or minute <= 0:
        return minute, burst
    return per_minute, max(1, math.ceil(burst * per_minute / minute))


def _credential_specs(credential_id: int, per_minute: int | None) -> list[_Spec]:
    scope = f"c{credential_id}"
    minute, burst = plan_limits(per_minute)
    return [
        _Spec(scope, "minute", minute, 60, group=0),
        _Spec(scope, "burst", burst, 10, group=0),
    ]


def _order_spec(credential_id: int, order_id: int) -> _Spec:
    return _Spec(
        f"c{credential_id}:o{order_id}",
        "order",
        settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR,
        3600,
        group=1,
    )


# The URL name of GET /api/v1/orders/{id}: its window is counted with the credential's.
ORDER_DETAIL_ROUTE = "order_detail"


def _route_specs(request: HttpRequest, credential_id: int) -> list[_Spec]:
    """The windows of the route being called that can be counted up front."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != ORDER_DETAIL_ROUTE or request.method != "GET":
        return []
    order_id = str(match.kwargs.get("id", ""))
    if not order_id.isdigit() or not 0 < int(order_id) < 2**63:
        return []  # the view answers 422; nothing to count against an order
    return [_order_spec(credential_id, int(order_id))]


def credential_admit(
    request: HttpRequest,
    *,
    credential_id: int,
    claim: str,
    fetch: str | None = None,
    per_minute: int | None = None,
) -> Admission:
    """Count one request of a credential (its plan `per_minute`, else 200/min and
    20/10 s) and, for an order read, of that order (60 an hour); add `claim` for a
    minute if absent; read `fetch` — on Redis all in one round trip. The caller
    decides what comes first, then calls `Admission.check` (RateLimited)."""
    return _count_all(
        _credential_specs(credential_id, per_minute) + _route_specs(request, credential_id),
        fetch=fetch,
        claim=(claim, 60),
    )


def order_read_hit(request: HttpRequest, *, credential_id: int, order_id: int) -> None:
    """Count one read of one order; raise RateLimited over 60 reads per hour.
    Nothing more to do when `credential_admit` counted it already."""
    spec = _order_spec(credential_id, order_id)
    if spec.scope in getattr(request, _SCOPES_ATTR, set()):
        return
    _count_all([spec]).check(request)


def add_headers(request: HttpRequest, response: HttpResponseBase) -> None:
    """X-RateLimit-* for the tightest window counted on this request, if any."""
    windows: list[Window] = getattr(request, _STATE_ATTR, [])
    if not windows:
        return
    tightest = min(windows, key=lambda w: (w.remaining, -w.reset_in))
    response["X-RateLimit-Limit"] = str(tightest.limit)
    response["X-RateLimit-Remaining"] = str(tightest.remaining)
    response["X-RateLimit-Reset"] = str(tightest.reset_in)
