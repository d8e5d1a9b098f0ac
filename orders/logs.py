"""Log context and request logging.

Every log record carries the request id and, where known, the staff user, the
API credential and the order (`LogContext`, a filter on the console handler
reading context variables). `RequestLogMiddleware` keeps a proxy's
`X-Request-ID` (or makes one), echoes it on the response, and writes one line
per request on `starship.request`: method, path (no query string; secrets in
paths redacted), status, duration. Tasks enqueued during the request carry the
id (`orders.tasks`), so one id follows an order from the POST to DELIVERED.

With LOG_FORMAT=json each line is one JSON object (python-json-logger);
plain text stays the default.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

from orders import metrics

FIELDS = ("request_id", "user_id", "credential_id", "order_id")
_context: dict[str, ContextVar[Any]] = {name: ContextVar(name, default=None) for name in FIELDS}

# A proxy's id is kept only if it looks like one: no log injection through it.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
# Paths whose segments are secrets (a gift link's token): the segment is replaced
# before logging.
REDACTED_PATHS = [(re.compile(r"^/gift/[^/]+"), "/gift/[redacted]")]
# The same anywhere in a log line (Django's own lines quote the path or the request line).
_SECRET_IN_TEXT = re.compile(r"/gift/[^/\s?\"']+")

request_logger = logging.getLogger("starship.request")
# Methods counted under their own name in the request metrics; any other is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def bind(**values: Any) -> None:
    """Add values to the log context of this request or task (None clears one)."""
    for name, value in values.items():
        _context[name].set(value)


def current(name: str) -> Any:
    return _context[name].get()


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """The log context with `values` for the block; as it was afterwards."""
    tokens = {name: _context[name].set(value) for name, value in values.items()}
    try:
        yield
    finally:
        for name, token in tokens.items():
            _context[name].reset(token)


class LogContext(logging.Filter):
    """Puts the context on every record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, _context[name].get())
        return True


class DropLoggedRefusals(logging.Filter):
    """Django's own line for a 4xx response (with a traceback for a 403 or 404
    raised as an exception) says nothing the request line does not: dropped.
    5xx lines, with their tracebacks, stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        return not (record.name == "django.request" and status is not None and status < 500)


class RedactSecretPaths(logging.Filter):
    """On Django's own loggers (django.request, django.security.csrf, django.server):
    a gift link's token in the message, its arguments or the record's request is
    replaced, so a refused CSRF check or a server error on a gift page logs no token.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        request = getattr(record, "request", None)
        path = getattr(request, "path", None)
        if isinstance(path, str) and redact_text(path) != path:
            record.request = None  # its text form (JSON logs) would show the path
        return True


def redact_text(text: str) -> str:
    return _SECRET_IN_TEXT.sub("/gift/[redacted]", text)


def log_path(path: str) -> str:
    for pattern, replacement in REDACTED_PATHS:
        path = pattern.sub(replacement, path)
    return path


class RequestLogMiddleware:
    """Request id in and out, the log context, and one line per request. First in
    MIDDLEWARE, so the line covers every other middleware's time and answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        start = time.perf_counter()
        with bound(request_id=request_id, user_id=None, credential_id=None, order_id=None):
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            # The user if something in the request asked for it (never loaded here).
            user = request.__dict__.get("_cached_user")
            if user is not None and user.is_authenticated and current("user_id") is None:
                bind(user_id=user.pk)
            status = response.status_code
            seconds = time.perf_counter() - start
            method = request.method if request.method in METHODS else "other"
            metrics.HTTP_REQUESTS.labels(method, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method).observe(seconds)
            request_logger.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %s %.1f ms",
                request.method,
                log_path(request.path),
                status,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "path": log_path(request.path),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
        return response
