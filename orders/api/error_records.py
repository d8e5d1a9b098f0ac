"""Which credential an API request was identified as, and the record of the error
answers it got (services/api_errors.py; the clients workspace shows them).

`caller_identify` is called by auth.py once the key and secret (or the token)
are known to be a credential's; `error_remember` by the API's outermost wrapper
(api.py) on every answer, so a 401 (nobody identified) is never recorded and
every other error is, whichever handler rendered it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponseBase

from orders import logs
from orders.errors import UNAVAILABLE_ERRORS
from orders.services.api_errors import api_error_record

logger = logging.getLogger("orders.api")

_CALLER_ATTR = "_api_caller"
# What keeps a record from being written: the database or the cache out of reach.
_NOT_RECORDED: tuple[type[Exception], ...] = (DatabaseError, *UNAVAILABLE_ERRORS)


@dataclass(frozen=True)
class Caller:
    credential_id: int
    client_id: int


def caller_identify(request: HttpRequest, *, credential_id: int, client_id: int) -> None:
    """Remember that this request comes from that (active) credential of that client."""
    setattr(request, _CALLER_ATTR, Caller(credential_id=credential_id, client_id=client_id))


def _error_code(response: HttpResponseBase) -> str:
    """The `error` of a JSON error body ("" when there is none)."""
    if getattr(response, "streaming", False):
        return ""
    try:
        body = json.loads(response.content)  # type: ignore[attr-defined]
    except (ValueError, TypeError, AttributeError):
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else ""


def error_remember(request: HttpRequest, response: HttpResponseBase) -> None:
    """Record `response` when it is an error answer to an identified credential. A
    record that cannot be written (the database or the cache out of reach: the
    very cause of a 503) is logged by its class and skipped; the answer stands."""
    caller: Caller | None = getattr(request, _CALLER_ATTR, None)
    if caller is None or response.status_code < 400:
        return
    try:
        with transaction.atomic():
            api_error_record(
                client_id=caller.client_id,
                credential_id=caller.credential_id,
                status=response.status_code,
                error_code=_error_code(response),
                method=request.method or "",
                path=request.path,
                request_id=logs.current("request_id") or "",
            )
    except _NOT_RECORDED as exc:
        logger.warning("API error answer not recorded (%s)", type(exc).__name__)
