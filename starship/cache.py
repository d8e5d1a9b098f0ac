"""Django's Redis cache, with one redis-py client per connection pool.

Django's RedisCacheClient builds a new `redis.Redis` around the pool on every
cache call, and each one fills its table of ~80 response callbacks: about
0.2 ms per call, several calls per API request. A `redis.Redis` is safe to
share between threads (each command borrows a connection from the pool), so
one per pool is enough. Everything else is Django's backend as it is.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class _SharedClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shared: dict[int, Any] = {}  # id(pool) -> its redis.Redis

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own pool choice (write: the first server; read: any), then
        # one client per pool. Both attributes are Django's, not in its stubs.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._shared.get(id(pool))
        if client is None:
            client = self._shared[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    """settings.CACHES BACKEND "starship.cache.RedisCache": Django's RedisCache."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedClient
