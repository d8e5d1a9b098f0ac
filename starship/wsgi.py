"""WSGI entry point (gunicorn starship.wsgi).

Each web worker loads what its first request would otherwise pay for as it
starts: the URLconf with every view module, and the cache client with its
first connection. A restarted host then answers its first requests as fast
as the rest.
"""

import contextlib
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "starship.settings")

application = get_wsgi_application()


def _warm_up() -> None:
    from django.core.cache import cache
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and every view
    with contextlib.suppress(Exception):  # a cache that is down: the first request says so
        cache.get("starship:warm-up")


_warm_up()
