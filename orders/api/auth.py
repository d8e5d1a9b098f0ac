"""API authentication: `X-API-Key` + `X-API-Secret`, or `Authorization: Bearer <JWT>`.

The JWT (HS256) is signed with a key derived from SECRET_KEY and carries the
credential id; it lives API_JWT_TTL_SECONDS. Every request re-checks the
credential, so a revoked key's tokens stop working too. Lookups are cached
(by key and by id) for API_CREDENTIAL_CACHE_SECONDS (a few seconds), which
bounds how long a revocation or a deactivated client takes to bite: a warm
call reads no credential from the database, and its last use is written at
most once a minute. Every failure answers the same 401.

Then two refusals, each a 403: a credential with an IP allowlist answers only
to requests from an address in it (`ip_not_allowed`, orders/addresses.py says
which address is the client's), and each operation names the scope it needs
(`scoped`, from enums.ApiScope; `insufficient_scope`). A token carries the
scopes it was issued with (a subset of its credential's); a Bearer request holds
the token's scopes that its credential still holds, so a scope taken from a
credential bites its live tokens within the cache time too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from ninja.security.base import AuthBase

from orders import logs, metrics
from orders.addresses import address_in, client_address
from orders.api import ratelimit
from orders.api.error_records import caller_identify
from orders.api.errors import Unauthorized
from orders.enums import ApiScope
from orders.errors import AddressNotAllowed, InsufficientScope
from orders.models import ApiCredential, Client
from orders.services.actors import Actor

logger = logging.getLogger("orders.api")

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "starship-orders"
JWT_AUDIENCE = "starship-orders-api-v1"
PUBLIC_KEY_RE = re.compile(r"^sk_(live|test)_[A-Za-z0-9]{1,48}$")
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the credential and its client (both active), the scopes this
    request holds (the credential's, or a token's that the credential still
    holds), the networks the credential may be used from (empty: any) and its
    rate-limit plan."""

    credential: ApiCredential
    client: Client
    scopes: frozenset[str]
    allowed_networks: tuple[str, ...] = ()
    rate_limit_per_minute: int | None = None  # its plan; None: the settings' limits

    def holds(self, scope: str) -> bool:
        return scope in self.scopes

    def actor(self, request: HttpRequest) -> Actor:
        return Actor.for_credential(
            self.credential,
            ip_address=client_address(request),
            user_agent=request.headers.get("User-Agent", ""),
        )


@dataclass(frozen=True)
class _CachedCredential:
    id: int
    public_key: str
    secret_hash: str
    client_id: int
    client_name: str
    active: bool
    mode: str  # a test key's orders take the sandbox path, and no stock batch
    scopes: tuple[str, ...]
    allowed_networks: tuple[str, ...]
    # A rotated secret, accepted until `previous_valid_until` (credential_rotate).
    previous_secret_hash: str = ""
    previous_valid_until: datetime | None = None
    rate_limit_per_minute: int | None = None

    def principal(self, *, token_scopes: frozenset[str] | None = None) -> Principal:
        """The caller; with a token's scopes, only those the credential still holds."""
        client = Client(id=self.client_id, name=self.client_name, is_active=True)
        client._state.adding = False
        credential = ApiCredential(
            id=self.id,
            client_id=self.client_id,
            public_key=self.public_key,
            secret_hash=self.secret_hash,
            mode=self.mode,
        )
        credential._state.adding = False
        credential.client = client
        scopes = frozenset(self.scopes)
        if token_scopes is not None:
            scopes &= token_scopes
        return Principal(
            credential=credential,
            client=client,
            scopes=scopes,
            allowed_networks=self.allowed_networks,
            rate_limit_per_minute=self.rate_limit_per_minute,
        )


def _load(
    *, public_key: str | None = None, credential_id: int | None = None, read_cache: bool = True
) -> _CachedCredential | None:
    """The credential by key or id, from the cache (unless the caller has just
    read it there and missed) or from the database, which then fills the cache."""
    if public_key is not None:
        cache_key, lookup = ApiCredential.cache_key(public_key=public_key), Q(public_key=public_key)
    else:
        cache_key, lookup = ApiCredential.cache_key(pk=credential_id), Q(pk=credential_id)
    ttl = settings.API_CREDENTIAL_CACHE_SECONDS
    if ttl > 0 and read_cache:
        hit = cache.get(cache_key)
        if hit is not None:
            return hit or None  # False caches "no such credential"
    row = ApiCredential.objects.select_related("client").filter(lookup).first()
    found = (
        _CachedCredential(
            id=row.pk,
            public_key=row.public_key,
            secret_hash=row.secret_hash,
            client_id=row.client_id,
            client_name=row.client.name,
            active=row.is_active,
            mode=row.mode,
            scopes=tuple(row.scopes or ()),
            allowed_networks=tuple(row.allowed_networks or ()),
            previous_secret_hash=row.previous_secret_hash,
            previous_valid_until=row.previous_secret_valid_until,
            rate_limit_per_minute=row.rate_limit_per_minute,
        )
        if row is not None
        else None
    )
    if ttl > 0:
        if found is None:
            cache.set(cache_key, False, timeout=ttl)
        else:  # by key and by id: a token call after a key call is warm too
            keys = [
                ApiCredential.cache_key(public_key=found.public_key),
                ApiCredential.cache_key(pk=found.id),
            ]
            cache.set_many(dict.fromkeys(keys, found), timeout=ttl)
    return found


def _touch_key(credential_id: int) -> str:
    return f"api:cred:used:{credential_id}"


def _touch(credential_id: int, address: str | None) -> None:
    """Record the credential's last use and the address it came from (its caller
    claimed _touch_key for the minute)."""
    now = timezone.now()
    ApiCredential.objects.filter(pk=credential_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
    ).update(last_used_at=now, last_used_ip=address)


def credential_authenticate(*, api_key: str, api_secret: str) -> Principal:
    """The active credential for this key + secret, or Unauthorized."""
    if not PUBLIC_KEY_RE.match(api_key or "") or not api_secret:
        raise Unauthorized()
    found = _load(public_key=api_key)
    candidate = found.secret_hash if found else ApiCredential.hash_secret("x")
    probe = ApiCredential(secret_hash=candidate)
    matches = probe.secret_matches(api_secret) or (
        found is not None
        and ApiCredential.previous_secret_matches(
            found.previous_secret_hash,
            found.previous_valid_until,
            api_secret,
            at=timezone.now(),
        )
    )
    if found is None or not matches or not found.active:
        raise Unauthorized()
    return found.principal()


def _signing_key() -> bytes:
    return salted_hmac("orders.api.jwt", "signing-key", algorithm="sha256").digest()


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    expires_at: datetime
    scopes: list[str]


def token_issue(*, principal: Principal, scopes: Iterable[str] | None = None) -> IssuedToken:
    """A short-lived HS256 JWT naming the credential and the scopes it carries:
    `scopes` (unknown: ValidationFailed; one the credential lacks:
    InsufficientScope), by default all the credential holds."""
    if scopes is None:
        granted = [scope for scope in ApiScope.values if principal.holds(scope)]
    else:
        granted = ApiScope.parse_many(scopes)
        missing = [scope for scope in granted if not principal.holds(scope)]
        if missing:
            raise InsufficientScope(missing=missing)
    ttl = settings.API_JWT_TTL_SECONDS
    now = int(time.time())
    claims = {
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "sub": str(principal.credential.pk),
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(12),
        "scope": " ".join(granted),  # RFC 8693's claim: space-separated
    }
    token = jwt.encode(claims, _signing_key(), algorithm=JWT_ALGORITHM)
    return IssuedToken(
        access_token=token,
        expires_in=ttl,
        expires_at=datetime.fromtimestamp(now + ttl, tz=UTC),
        scopes=granted,
    )


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: its credential, and its scopes (None: a token from
    before scopes, which holds all its credential's)."""

    credential_id: int
    scopes: frozenset[str] | None
    expires: int


# Verified tokens by digest of (signing key, token): a token is immutable, so a
# second call needs only its expiry checked, not its signature. Cleared when full.
_VERIFIED_MAX = 4096
_verified: dict[bytes, TokenClaims] = {}


def token_claims(token: str) -> TokenClaims:
    """The claims of a valid, unexpired token, or Unauthorized. Whether its
    credential is active, and what it still holds, is the caller's to check."""
    key = _signing_key()
    digest = hashlib.sha256(key + token.encode()).digest()
    hit = _verified.get(digest)
    if hit is not None and hit.expires > time.time():
        return hit
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        credential_id, expires = int(claims["sub"]), int(claims["exp"])
        scope = claims.get("scope")
        scopes = None if scope is None else frozenset(scope.split())
    except (jwt.InvalidTokenError, ValueError, TypeError, AttributeError):
        raise Unauthorized() from None
    if not 0 < credential_id < 2**63:
        raise Unauthorized()
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    verified = TokenClaims(credential_id=credential_id, scopes=scopes, expires=expires)
    _verified[digest] = verified
    return verified


def _check_address(request: HttpRequest, principal: Principal) -> None:
    """AddressNotAllowed unless the credential's allowlist is empty or holds the
    client's address; a refusal is counted and logged (never the allowlist)."""
    if not principal.allowed_networks:
        return
    address = client_address(request)
    if address_in(address, principal.allowed_networks):
        return
    metrics.API_IP_REFUSALS.inc()
    logger.warning(
        "Refused credential %s from %s: not in its IP allowlist",
        principal.credential.pk,
        address or "an unknown address",
    )
    raise AddressNotAllowed()


def _check_scope(principal: Principal, scope: str | None) -> Principal:
    if scope is not None and not principal.holds(scope):
        raise InsufficientScope(missing=[scope])
    return principal


def _admit(request: HttpRequest, principal: Principal) -> Principal:
    """Count the request; record last use at most once a minute per credential
    (no write per request), claimed in the rate limiter's round trip."""
    credential_id = principal.credential.pk
    logs.bind(credential_id=credential_id)
    caller_identify(request, credential_id=credential_id, client_id=principal.client.pk)
    _check_address(request, principal)
    admission = ratelimit.credential_admit(
        request,
        credential_id=credential_id,
        claim=_touch_key(credential_id),
        per_minute=principal.rate_limit_per_minute,
    )
    admission.check(request)
    if admission.claimed:
        _touch(credential_id, client_address(request))
    return principal


def _admit_token(request: HttpRequest, token: TokenClaims) -> Principal:
    """A token's request in one cache round trip: its credential's cache entry
    (with its scopes and allowlist) is read in the rate limiter's script. A
    credential that is missing or inactive answers 401 before any limit is looked
    at, an address outside its allowlist 403; a cache miss reads the database."""
    credential_id = token.credential_id
    logs.bind(credential_id=credential_id)
    fetch = (
        ApiCredential.cache_key(pk=credential_id)
        if settings.API_CREDENTIAL_CACHE_SECONDS > 0
        else None
    )
    admission = ratelimit.credential_admit(
        request, credential_id=credential_id, claim=_touch_key(credential_id), fetch=fetch
    )
    found = admission.fetched
    if found is None:
        found = _load(credential_id=credential_id, read_cache=False)
    if not found or not found.active:  # False: cached as "no such credential"
        raise Unauthorized()
    caller_identify(request, credential_id=credential_id, client_id=found.client_id)
    principal = found.principal(token_scopes=token.scopes)
    _check_address(request, principal)
    # The plan is known only now: the counts are held to it here (a request its
    # plan refuses may still have counted against an order's hourly window).
    admission.under_plan(found.rate_limit_per_minute).check(request)
    if admission.claimed:
        _touch(credential_id, client_address(request))
    return principal


class ApiKeyAuth(AuthBase):
    """`X-API-Key` + `X-API-Secret`. Presented but wrong stops here with 401; then
    the allowlist and `scope` (None: any authenticated caller) are checked (403)."""

    openapi_type = "apiKey"
    openapi_in = "header"
    openapi_name = "X-API-Key"
    openapi_description = "Public key (sk_live_… / sk_test_…); send X-API-Secret with it."

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Principal | None:
        api_key = request.headers.get("X-API-Key")
        if api_key is None:
            return None
        principal = credential_authenticate(
            api_key=api_key.strip(), api_secret=request.headers.get("X-API-Secret", "")
        )
        return _check_scope(_admit(request, principal), self.scope)


class BearerAuth(AuthBase):
    """`Authorization: Bearer <JWT>` from POST /api/v1/auth/token; then the
    allowlist and `scope` as ApiKeyAuth."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_bearerFormat = "JWT"

    def __init__(self, scope: str | None = None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Principal | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        return _check_scope(_admit_token(request, token_claims(token.strip())), self.scope)


def scoped(scope: ApiScope) -> list[AuthBase]:
    """The `auth` of an operation that needs `scope`: either scheme, then the scope."""
    return [ApiKeyAuth(scope), BearerAuth(scope)]


def token_auth_admit(request: HttpRequest, principal: Principal) -> Principal:
    """The token endpoint authenticates from its body, then counts like any call."""
    return _admit(request, principal)


# Security scheme for the secret half of the key pair (documentation only:
# ApiKeyAuth reads both headers).
API_SECRET_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-API-Secret",
    "description": "The secret issued with the key; only its hash is stored.",
}
