"""The site's answer to an unhandled exception (Django's handler500).

A dependency out of reach (orders.errors.UNAVAILABLE_ERRORS: the database or Redis
during a failover, a restart, a network cut) is a 503 page with Retry-After that
says to try again; anything else is the 500 page. Both are rendered without the
request, so neither touches the session, the user or the database that may be the
cause. The API answers its own JSON for both (orders/api/errors.py).
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token

from orders.errors import UNAVAILABLE_ERRORS, UNAVAILABLE_RETRY_SECONDS


@requires_csrf_token
def server_error(request: HttpRequest) -> HttpResponse:
    if isinstance(sys.exception(), UNAVAILABLE_ERRORS):
        page = loader.get_template("503.html").render({"retry_after": UNAVAILABLE_RETRY_SECONDS})
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    else:
        response = HttpResponse(loader.get_template("500.html").render({}), status=500)
    response["Cache-Control"] = "no-store"
    return response
