"""Project middleware: static files that are never silently missing, no caching
of application pages, and the session idle timeout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from whitenoise.middleware import WhiteNoiseMiddleware

logger = logging.getLogger(__name__)

SEEN_KEY = "_seen"


class IdleTimeoutMiddleware:
    """Push the session's expiry forward on activity, at most once per
    SESSION_REFRESH_SECONDS.

    A session expires SESSION_COOKIE_AGE after it was last refreshed, so it
    ends between SESSION_COOKIE_AGE - SESSION_REFRESH_SECONDS and
    SESSION_COOKIE_AGE after the last request. SESSION_SAVE_EVERY_REQUEST did
    the same with an UPDATE and a commit on every page view: at 1,000,000
    orders that write was a third of the order list's database time.
    Requests a page makes by itself (htmx polling, marked X-Background-Poll)
    are not activity: an order list left open must still time out.
    Must come after SessionMiddleware, so the session is saved after this runs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if (
            session is not None
            and session.session_key
            and not session.is_empty()
            and "X-Background-Poll" not in request.headers
        ):
            now = int(time.time())
            if now - session.get(SEEN_KEY, 0) >= settings.SESSION_REFRESH_SECONDS:
                session[SEEN_KEY] = now  # modified: SessionMiddleware saves it with a new expiry
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """whitenoise, serving what `collectstatic` left in STATIC_ROOT and, for a
    file missing there, the source file the staticfiles finders know.

    A server started without `collectstatic` served the dashboard without CSS
    and htmx as a 404 page. whitenoise's WHITENOISE_USE_FINDERS would instead
    replace every collected file (and its compressed variants) with its source
    and scan all sources at start; here collected files win, a missing one is
    looked up on its first request, kept, and logged as a warning.
    """

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if (
            not self.autorefresh  # under DEBUG whitenoise already asks the finders itself
            and path.startswith(self.static_prefix)
            and path not in self.files
        ):
            self._add_uncollected(path)
        return super().__call__(request)  # type: ignore[no-any-return]

    def _add_uncollected(self, path: str) -> None:
        self.use_finders = True  # candidate_paths_for_url asks the finders only then
        static_file = self.find_file(path)
        if static_file is not None:
            self.files[path] = static_file
            logger.warning(
                "Static file %s is not in STATIC_ROOT (%s): served from its source "
                "directory, uncompressed. Run `manage.py collectstatic`.",
                path,
                self.static_root,
            )


class NoStoreMiddleware:
    """`Cache-Control: no-store, private` on every response the application renders.

    Dashboard and admin pages show customer data and vouchers, the sign-in pages
    carry CSRF tokens: no browser history cache or shared proxy may keep them.
    Static files never reach this middleware (whitenoise answers them first);
    a response already marked no-store (the API's, CSV exports) is left as it is.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "no-store" not in response.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response
