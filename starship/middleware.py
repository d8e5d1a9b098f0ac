"""Session idle timeout without a database write on every request."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

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
