"""Every API error is `{"error": "<snake_case>", "message": "…"}` (+ `details` for 400s).

The handlers here translate domain errors (by their code, through the one
table STATUS_BY_CODE), ninja's own errors and anything unexpected (one 500
answer, `internal_error`); `api_not_found` and `json_method_not_allowed`
cover what Django and ninja would otherwise answer with HTML or plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from orders.errors import (
    UNAVAILABLE_ERRORS,
    UNAVAILABLE_RETRY_SECONDS,
    DomainError,
    RateLimited,
    ValidationFailed,
)

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger("orders.api")

UNAUTHORIZED_MESSAGE = "Invalid or expired access token"
NOT_FOUND_MESSAGE = "No Matching Result Found!"
INTERNAL_MESSAGE = "Internal error; it has been logged."
UNAVAILABLE_MESSAGE = "The service is briefly unavailable; retry after a few seconds."

# The HTTP status of each domain error code (orders/errors.py): the API's one
# table of them. A code missing here answers as its nearest parent class's code.
STATUS_BY_CODE: dict[str, int] = {
    "domain_error": 400,
    "validation_error": 400,
    "destination_not_allowed": 400,
    "import_rejected": 400,
    "insufficient_funds": 402,
    "forbidden": 403,
    "own_price_change": 403,
    "insufficient_scope": 403,
    "ip_not_allowed": 403,
    "not_found": 404,
    "conflict": 409,
    "illegal_transition": 409,
    "not_revealable": 409,
    "not_cancellable": 409,
    "not_retryable": 409,
    "refund_not_due": 409,
    "inventory_conflict": 409,
    "price_change_not_pending": 409,
    "price_change_stale": 409,
    "second_approval_required": 409,
    "own_credit_request": 409,
    "credit_request_decided": 409,
    "refund_already_approved": 409,
    "webhook_endpoint_inactive": 409,
    "webhook_delivery_not_replayable": 409,
    "gift_link_gone": 410,
    "gift_link_locked": 423,
    "gift_link_code_refused": 400,
    "rate_limited": 429,
    "decryption_failed": 500,
}


def http_status(error: DomainError) -> int:
    """The status the API answers `error` with, from STATUS_BY_CODE."""
    for cls in type(error).__mro__:
        code = cls.__dict__.get("code")
        if code in STATUS_BY_CODE:
            return STATUS_BY_CODE[code]
    return STATUS_BY_CODE[DomainError.code]


class ApiError(Exception):
    """An error answered as is: status, code and a message safe to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Unauthorized(AuthenticationError):
    """Bad, unknown, revoked or expired credentials: always the same answer."""

    def __init__(self) -> None:
        super().__init__(401, UNAUTHORIZED_MESSAGE)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    body: dict[str, Any] = {"error": code, "message": message}
    if details:
        body["details"] = details
    return body


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


def internal_error(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """The one 500 answer, for anything no other handler answers.

    The log has the exception's class and traceback (code and the exception
    text), never request bodies or headers; services keep secrets out of
    exception messages.
    """
    logger.error(
        "Unhandled %s answering %s %s",
        type(exc).__name__,
        request.method,
        request.path,
        exc_info=exc,
    )
    return error_response(500, "internal_error", INTERNAL_MESSAGE)


def _field_of(loc: tuple | list) -> str:
    # ninja's loc is (source, [param name,] field, ...): keep what the client sent.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "form"}:
        source, parts = parts[0], parts[1:]
        if source == "body" and parts and parts[0] == "payload":
            parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_details(exc: NinjaValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors:
        message = str(error.get("msg", "Invalid value."))
        # pydantic prefixes custom messages with "Value error, ".
        message = message.removeprefix("Value error, ")
        details.append({"field": _field_of(error.get("loc", ())), "message": message})
    return details


def _on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    details = _validation_details(exc)
    first = details[0] if details else {"field": "body", "message": "Invalid request."}
    message = f"{first['field']}: {first['message']}"
    return error_response(400, "validation_error", message, details)


def _on_domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
    status = http_status(exc)
    if status >= 500:
        return internal_error(request, exc)
    details = None
    if isinstance(exc, ValidationFailed):
        detail: dict[str, Any] = {"field": exc.field or "body", "message": exc.message}
        if "valid" in exc.details:
            detail["valid"] = exc.details["valid"]
        details = [detail]
    response = error_response(status, exc.code, exc.message, details)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message)


def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, ApiError):
        # ninja wraps whatever the body parser raises in a 400; ours keeps its answer.
        return _on_api_error(request, exc.__cause__)
    if exc.status_code == 401:
        return error_response(401, "unauthorized", UNAUTHORIZED_MESSAGE)
    if exc.status_code == 400:
        # ninja raises this for a body it cannot parse.
        return error_response(
            400, "malformed_json", "The request body is not valid JSON (send an object)."
        )
    if exc.status_code == 404:
        return error_response(404, "not_found", NOT_FOUND_MESSAGE)
    return error_response(exc.status_code, "http_error", str(exc))


def _on_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The database or Redis cannot be reached right now (a failover, a restart, a
    network cut): a 503 the client may retry, not a 500. Logged as one line with the
    exception's class only (its message may name a host)."""
    logger.warning(
        "Unavailable (%s) answering %s %s", type(exc).__name__, request.method, request.path
    )
    response = error_response(503, "service_unavailable", UNAVAILABLE_MESSAGE)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
    return response


def _on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return payload_too_large()


def _on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", NOT_FOUND_MESSAGE)


# Most specific class wins.
HANDLERS: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
    (NinjaValidationError, _on_validation),
    (DomainError, _on_domain),
    (ApiError, _on_api_error),
    (HttpError, _on_http_error),
    (RequestDataTooBig, _on_too_big),
    (Http404, _on_not_found),
    # A dependency out of reach: the database's connection errors, Redis's (cache, RQ).
    *((unavailable, _on_unavailable) for unavailable in UNAVAILABLE_ERRORS),
    (Exception, internal_error),
]


def install_error_handlers(api: NinjaAPI) -> None:
    """Register the JSON translations on the API."""
    for exc_class, handler in HANDLERS:
        api.add_exception_handler(exc_class, handler)


def payload_too_large() -> JsonResponse:
    """A body over API_MAX_BODY_BYTES (or Django's DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    return error_response(
        413,
        "payload_too_large",
        f"The request body is larger than {settings.API_MAX_BODY_BYTES} bytes.",
    )


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any URL under /api/ that names no operation."""
    response = error_response(404, "not_found", NOT_FOUND_MESSAGE)
    response["Cache-Control"] = "no-store"
    return response


def json_method_not_allowed(response: HttpResponse) -> HttpResponse:
    """ninja answers a wrong method with text; keep its Allow header, answer JSON."""
    allowed = response.get("Allow", "")
    json_response = error_response(
        405, "method_not_allowed", f"Method not allowed here; allowed: {allowed}."
    )
    json_response["Allow"] = allowed
    return json_response
