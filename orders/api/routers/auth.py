"""POST /api/v1/auth/token: exchange key + secret for a short-lived JWT."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from orders.api.auth import IssuedToken, credential_authenticate, token_auth_admit, token_issue
from orders.api.schemas import BODY_ERRORS, ErrorOut, TokenIn, TokenOut

router = Router(tags=["Authentication"])


@router.post(
    "/token",
    auth=None,
    response={
        200: TokenOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        **BODY_ERRORS,
        429: ErrorOut,
        500: ErrorOut,
    },
    summary="Get an access token",
)
def token_create(request: HttpRequest, payload: TokenIn) -> IssuedToken:
    """Exchange an API key and secret for a Bearer JWT (valid API_JWT_TTL_SECONDS).

    Send it as `Authorization: Bearer <access_token>`; a token of a credential
    revoked since it was issued is refused. `scopes` narrows the token to some of
    the credential's scopes; asking for one the credential lacks answers 403
    `insufficient_scope`, an unknown one 400.
    """
    principal = credential_authenticate(api_key=payload.api_key, api_secret=payload.api_secret)
    token_auth_admit(request, principal)
    return token_issue(principal=principal, scopes=payload.scopes)
