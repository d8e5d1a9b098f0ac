"""The request-body parser of /api/v1: JSON only, declared as JSON, strictly JSON."""

from __future__ import annotations

import json
from typing import Any, cast

from django.http import HttpRequest
from ninja.parser import Parser

from orders.api.errors import ApiError

JSON_MEDIA_TYPE = "application/json"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class JsonParser(Parser):
    """Parse a body only when it says it is JSON; refuse NaN and Infinity.

    A JSON body sent as text/plain or form data would otherwise be read as
    JSON, which lets a plain HTML form on another site post to the API.
    """

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if request.content_type != JSON_MEDIA_TYPE:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Send the request body as {JSON_MEDIA_TYPE} (Content-Type: {JSON_MEDIA_TYPE}).",
            )
        return cast(dict[str, Any], json.loads(request.body, parse_constant=_no_constant))
