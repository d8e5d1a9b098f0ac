"""The NinjaAPI of /api/v1: routers, auth, JSON errors, rate-limit headers, docs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase
from django.urls import URLPattern, URLResolver, re_path
from ninja import NinjaAPI

from orders.api import ratelimit
from orders.api.auth import API_SECRET_SCHEME, ApiKeyAuth, BearerAuth
from orders.api.error_records import error_remember
from orders.api.errors import (
    api_not_found,
    install_error_handlers,
    internal_error,
    json_method_not_allowed,
    payload_too_large,
)
from orders.api.parser import JsonParser
from orders.api.routers import auth as auth_router
from orders.api.routers import charges, orders, products, wallet, webhooks

DESCRIPTION = """
Buy gift cards, mobile top-ups and digital services, paid from your prepaid wallet.

**Authentication**: `X-API-Key` + `X-API-Secret` on every request, or
`Authorization: Bearer <access_token>` from `POST /api/v1/auth/token`.

**Scopes**: each operation needs one scope of the credential (or token), named
in its description and in `x-required-scope`: `orders:read`, `orders:write`,
`wallet:read`, `webhooks:manage`; without it, 403 `insufficient_scope`. Without `vouchers:read` an
order's vouchers carry no secrets (`vouchers_redacted: true`). A credential with
an IP allowlist answers other addresses 403 `ip_not_allowed`.

**Errors** are always `{"error": "<snake_case>", "message": "…"}`; a
`validation_error` adds `details: [{"field", "message"}]`.

**Rate limits** per credential: 200 requests/minute, 20 per 10 seconds, 60 reads
of one order per hour. Every authenticated response carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds) for the tightest
window; over the limit: 429 `rate_limited` with `Retry-After`.

**Money** is a string with two decimals; timestamps are RFC 3339 UTC; enums are
accepted in any case and answered in UPPERCASE.
"""


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


# Sent on every authenticated response (so not on 401), for the tightest window.
RATE_LIMIT_HEADERS = {
    "X-RateLimit-Limit": _header("Requests allowed in the tightest rate-limit window."),
    "X-RateLimit-Remaining": _header("Requests left in that window."),
    "X-RateLimit-Reset": _header("Seconds until that window starts over."),
}
RETRY_AFTER_HEADER = _header("Seconds to wait before retrying.")


def _declared_length(request: HttpRequest) -> int:
    """The body size the client announced (Django reads no more than that)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _api_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Around every API URL: 413 for a body over API_MAX_BODY_BYTES, JSON for 405
    and for anything that escaped, rate-limit headers on authenticated
    responses, the record of an error answer to an identified credential, and
    no caching of private data."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase
        try:
            if request.method == "POST" and _declared_length(request) > settings.API_MAX_BODY_BYTES:
                # Refused on the header alone: the body is never read.
                response = payload_too_large()
            else:
                response = view(request, *args, **kwargs)
        except RequestDataTooBig:
            response = payload_too_large()
        except Exception as exc:
            response = internal_error(request, exc)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = json_method_not_allowed(response)  # type: ignore[arg-type]
        ratelimit.add_headers(request, response)
        error_remember(request, response)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response

    wrapped.csrf_exempt = True  # type: ignore[attr-defined]
    return wrapped


class StarshipAPI(NinjaAPI):
    def _get_urls(self) -> list[URLResolver | URLPattern]:
        patterns = super()._get_urls()
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                if pattern.name == "api-root":
                    pattern.callback = api_not_found  # ninja's own raises Http404 (HTML)
                else:
                    pattern.callback = _api_view(pattern.callback)
        patterns.append(re_path(r"^.*$", api_not_found, name="api-not-found"))
        return patterns

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        scopes = operation_scopes(self)
        # The key and the secret go together: one requirement naming both.
        components = schema.setdefault("components", {})
        schemes = components.setdefault("securitySchemes", {})
        if "ApiKeyAuth" in schemes:
            schemes["ApiSecretAuth"] = API_SECRET_SCHEME
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                scope = scopes.get(operation.get("operationId", ""))
                if scope is not None:
                    operation["x-required-scope"] = scope
                    operation["description"] = (
                        operation.get("description", "") + f"\n\nNeeds the scope `{scope}`."
                    ).strip()
                for requirement in operation.get("security", []):
                    if "ApiKeyAuth" in requirement:
                        requirement["ApiSecretAuth"] = []
                for code, response in operation.get("responses", {}).items():
                    if str(code) != "401":
                        response["headers"] = dict(RATE_LIMIT_HEADERS)
                    if str(code) == "429":
                        response["headers"]["Retry-After"] = RETRY_AFTER_HEADER
        return schema


def operation_scopes(ninja_api: NinjaAPI) -> dict[str, str]:
    """The scope each operation needs, by operationId, read from its auth
    (`scoped`); an operation needing none (the token endpoint) is not listed."""
    found: dict[str, str] = {}
    # ninja's own walk of the mounted routers, as its OpenAPI generator does it.
    for bound in ninja_api._get_bound_routers():
        for path_view in bound.path_operations.values():
            for operation in path_view.operations:
                auth = operation.auth_callbacks
                scope = getattr(auth[0], "scope", None) if auth else None
                if scope is not None:
                    op_id = operation.operation_id or ninja_api.get_openapi_operation_id(operation)
                    found[op_id] = str(scope)
    return found


api = StarshipAPI(
    title="Starship Orders API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=[ApiKeyAuth(), BearerAuth()],
    parser=JsonParser(),
)
install_error_handlers(api)
api.add_router("/auth", auth_router.router)
api.add_router("/products", products.router)
api.add_router("/charges", charges.router)
api.add_router("/orders", orders.router)
api.add_router("/wallet", wallet.router)
api.add_router("/webhooks", webhooks.router)

__all__ = ["api", "api_not_found"]
