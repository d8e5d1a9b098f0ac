"""SESSION_ENGINE "starship.sessions": Django's cached_db sessions, with the
cache only ever a cache.

Django's cached_db already reads the database when the cache fails to answer,
but then writes the session back into the same cache unguarded, so a Redis that
is down turns every signed-in page into a 500 (and `exists`, asked for a new
session key, fails the same way). Here both fall back to the database: staff
stay signed in while Redis is away. `delete` is left as Django has it: a
sign-out that cannot remove the cached copy fails (503) rather than leave a
session that would come back with Redis.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.sessions.backends import cached_db
from django.core.cache.backends.base import BaseCache

logger = logging.getLogger("django.contrib.sessions")


class SessionStore(cached_db.SessionStore):
    _cache: BaseCache  # Django's attributes, missing from its stubs

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            data = None  # as Django: a cache that cannot answer is a miss
        if data is not None:
            return data  # type: ignore[no-any-return]
        stored = self._get_session_from_db()  # type: ignore[attr-defined]
        if stored is None:
            return {}
        data = self.decode(stored.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=stored.expire_date))
        except Exception as exc:
            logger.warning("Session not cached (%s); read from the database", type(exc).__name__)
        return data  # type: ignore[no-any-return]

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        try:
            if (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception as exc:
            logger.warning("Session cache unreadable (%s); asking the database", type(exc).__name__)
        return bool(self.model.objects.filter(session_key=session_key).exists())
