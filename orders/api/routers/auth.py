"""POST /api/v1/auth/token: exchange key + secret for a short-lived JWT."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from orders.api.auth import credential_authenticate, token_auth_admit, token_issue
from orders.api.schemas import BODY_ERRORS, ErrorOut, TokenIn, TokenOut, rfc3339

router = Router(tags=["Authentication"])


@router.post(
    "/token",
    auth=None,
    response={
        200: TokenOut,
        400: ErrorOut,
        401: ErrorOut,
        **BODY_ERRORS,
        429: ErrorOut,
        500: ErrorOut,
    },
    summary="Get an access token",
)
def token_create(request: HttpRequest, payload: TokenIn) -> dict:
    """Exchange an API key and secret for a Bearer JWT (valid API_JWT_TTL_SECONDS).

    Send it as `Authorization: Bearer <access_token>`; a token of a credential
    revoked since it was issued is refused.
    """
    principal = credential_authenticate(api_key=payload.api_key, api_secret=payload.api_secret)
    token_auth_admit(request, principal)
    issued = token_issue(principal=principal)
    return {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "expires_at": rfc3339(issued.expires_at),
    }
