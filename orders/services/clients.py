"""Clients, their API credentials and wallets."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from orders.addresses import networks_parse
from orders.enums import ALL_API_SCOPES, ApiScope
from orders.errors import Conflict, NotFound, ValidationFailed
from orders.models import ApiCredential, Client, Wallet
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.wallets import money, wallet_top_up


@dataclass(frozen=True)
class IssuedCredential:
    """A new credential; `secret` exists only here and is never stored."""

    credential: ApiCredential
    secret: str


def _currency(code: str) -> str:
    value = code.strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise ValidationFailed(f"{code!r} is not a 3-letter currency code.", field="currency")
    return value


def _scopes(scopes: Iterable[str] | None) -> list[str]:
    """The scopes asked for, checked (None: all of them; none at all is refused)."""
    if scopes is None:
        return list(ALL_API_SCOPES)
    checked = ApiScope.parse_many(scopes)
    if not checked:
        raise ValidationFailed(
            f"A credential needs at least one scope; valid: {', '.join(ALL_API_SCOPES)}.",
            field="scopes",
            valid=list(ALL_API_SCOPES),
        )
    return checked


@transaction.atomic
def credential_issue(
    *,
    client: Client,
    actor: Actor,
    mode: str = ApiCredential.Mode.LIVE,
    label: str = "",
    scopes: Iterable[str] | None = None,
    allowed_networks: Iterable[str] = (),
) -> IssuedCredential:
    """Create a key + secret pair; only the SHA-256 of the secret is kept. It holds
    `scopes` (all unless told otherwise) and answers only from `allowed_networks`
    (IPs or CIDRs; none: any address)."""
    granted = _scopes(scopes)
    networks = networks_parse(allowed_networks)
    prefix = "sk_test_" if mode == ApiCredential.Mode.TEST else "sk_live_"
    public_key = prefix + secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    credential = ApiCredential.objects.create(
        client=client,
        mode=mode,
        label=label,
        public_key=public_key,
        secret_hash=ApiCredential.hash_secret(secret),
        scopes=granted,
        allowed_networks=networks,
    )
    audit_record(
        action="credential.issue",
        actor=actor,
        data={
            "client_id": client.pk,
            "public_key": public_key,
            "mode": mode,
            "label": label,
            "scopes": granted,
            "allowed_networks": networks,
        },
    )
    return IssuedCredential(credential=credential, secret=secret)


def _forget(credential: ApiCredential) -> None:
    # The API caches credential lookups for a few seconds; a change bites at once.
    cache.delete_many(
        [
            ApiCredential.cache_key(public_key=credential.public_key),
            ApiCredential.cache_key(pk=credential.pk),
        ]
    )


@transaction.atomic
def credential_access_set(
    *,
    credential_id: int,
    actor: Actor,
    scopes: Iterable[str] | None = None,
    allowed_networks: Iterable[str] | None = None,
) -> ApiCredential:
    """Change what a credential may do (`scopes`) and where from (`allowed_networks`);
    None leaves one as it is. Its live tokens are held to the new scopes too."""
    credential = ApiCredential.objects.select_for_update(no_key=True).get(pk=credential_id)
    if scopes is not None:
        credential.scopes = _scopes(scopes)
    if allowed_networks is not None:
        credential.allowed_networks = networks_parse(allowed_networks)
    credential.save(update_fields=["scopes", "allowed_networks"])
    _forget(credential)
    audit_record(
        action="credential.access_set",
        actor=actor,
        data={
            "client_id": credential.client_id,
            "public_key": credential.public_key,
            "scopes": credential.scopes,
            "allowed_networks": credential.allowed_networks,
        },
    )
    return credential


@transaction.atomic
def credential_rotate(
    *, credential_id: int, actor: Actor, overlap_seconds: int | None = None
) -> IssuedCredential:
    """A new secret for the credential (its key, scopes and allowlist stay); the
    one it replaces keeps working for `overlap_seconds` (API_SECRET_ROTATION_OVERLAP_SECONDS
    by default; 0: it stops at once), so the partner can deploy the new one first.
    Rotating again inside an overlap ends the older secret at once: two secrets
    at most ever work. The new secret exists only in the result."""
    overlap = (
        settings.API_SECRET_ROTATION_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds
    )
    if overlap < 0:
        raise ValidationFailed("The overlap cannot be negative.", field="overlap_seconds")
    credential = ApiCredential.objects.select_for_update(no_key=True).get(pk=credential_id)
    if credential.revoked_at is not None:
        raise Conflict("A revoked credential cannot be rotated; issue a new one.")
    now = timezone.now()
    secret = secrets.token_urlsafe(32)
    credential.previous_secret_hash = credential.secret_hash if overlap else ""
    credential.previous_secret_valid_until = now + timedelta(seconds=overlap) if overlap else None
    credential.secret_hash = ApiCredential.hash_secret(secret)
    credential.save(
        update_fields=["secret_hash", "previous_secret_hash", "previous_secret_valid_until"]
    )
    _forget(credential)
    audit_record(
        action="credential.rotate",
        actor=actor,
        data={
            "client_id": credential.client_id,
            "public_key": credential.public_key,
            "previous_secret_valid_until": (
                credential.previous_secret_valid_until.isoformat()
                if credential.previous_secret_valid_until
                else None
            ),
        },
    )
    return IssuedCredential(credential=credential, secret=secret)


@transaction.atomic
def credential_revoke(*, credential_id: int, actor: Actor) -> ApiCredential:
    """Revoke a credential; it answers 401 from then on."""
    credential = ApiCredential.objects.select_for_update(no_key=True).get(pk=credential_id)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
        _forget(credential)
        audit_record(
            action="credential.revoke",
            actor=actor,
            data={"client_id": credential.client_id, "public_key": credential.public_key},
        )
    return credential


# The largest plan a credential may be given (requests per minute).
RATE_LIMIT_PLAN_MAX = 100_000


@transaction.atomic
def credential_rate_limit_set(
    *, credential_id: int, actor: Actor, per_minute: int | None
) -> ApiCredential:
    """Give a credential its own rate-limit plan, `per_minute` requests a minute
    (1 to RATE_LIMIT_PLAN_MAX; its burst window scales with it, api/ratelimit.py),
    or None: the default, API_RATE_LIMIT_PER_MINUTE. It bites within the cache time."""
    if per_minute is not None and not 1 <= per_minute <= RATE_LIMIT_PLAN_MAX:
        raise ValidationFailed(
            f"A rate-limit plan is 1 to {RATE_LIMIT_PLAN_MAX} requests per minute "
            "(empty: the default).",
            field="rate_limit_per_minute",
        )
    credential = ApiCredential.objects.select_for_update(no_key=True).get(pk=credential_id)
    previous = credential.rate_limit_per_minute
    if previous == per_minute:
        return credential
    credential.rate_limit_per_minute = per_minute
    credential.save(update_fields=["rate_limit_per_minute"])
    _forget(credential)
    audit_record(
        action="credential.rate_limit_set",
        actor=actor,
        data={
            "client_id": credential.client_id,
            "public_key": credential.public_key,
            "previous_per_minute": previous,
            "per_minute": per_minute,
        },
    )
    return credential


@transaction.atomic
def wallet_open(*, client: Client, currency: str) -> Wallet:
    """The client's wallet in `currency`, created empty if missing."""
    wallet, _ = Wallet.objects.get_or_create(client=client, currency=_currency(currency))
    return wallet


@transaction.atomic
def client_wallet_add(*, client_id: int, currency: str, actor: Actor) -> Wallet:
    """Open the client a new, empty wallet in `currency` (audited); a currency it
    has a wallet in already is refused."""
    client = Client.objects.select_for_update(no_key=True).filter(pk=client_id).first()
    if client is None:
        raise NotFound("No such client.")
    code = _currency(currency)
    if Wallet.objects.filter(client=client, currency=code).exists():
        raise ValidationFailed(f"{client.name} already has a {code} wallet.", field="currency")
    wallet = wallet_open(client=client, currency=code)
    audit_record(
        action="wallet.open",
        actor=actor,
        data={"client_id": client.pk, "wallet_id": wallet.pk, "currency": code},
    )
    return wallet


def _client_name(name: str) -> str:
    """The new client's name, stripped; empty or taken is refused."""
    clean = name.strip()
    if not clean:
        raise ValidationFailed("A client needs a name.", field="name")
    if Client.objects.filter(name=clean).exists():
        raise ValidationFailed(f"A client named {clean!r} already exists.", field="name")
    return clean


def _client_open(
    *, name: str, currency: str, contact_email: str, actor: Actor
) -> tuple[Client, Wallet]:
    client = Client.objects.create(name=name, contact_email=contact_email)
    wallet = wallet_open(client=client, currency=currency)
    audit_record(
        action="client.create",
        actor=actor,
        data={"client_id": client.pk, "name": client.name, "currency": wallet.currency},
    )
    return client, wallet


@transaction.atomic
def client_open(
    *, name: str, currency: str, actor: Actor, contact_email: str = ""
) -> tuple[Client, Wallet]:
    """A new client with one empty wallet in `currency` and no credential yet
    (the dashboard issues those one by one); audited."""
    return _client_open(
        name=_client_name(name), currency=currency, contact_email=contact_email, actor=actor
    )


@transaction.atomic
def client_create(
    *,
    name: str,
    currency: str,
    balance: object = "0.00",
    actor: Actor,
    mode: str = ApiCredential.Mode.LIVE,
    contact_email: str = "",
    scopes: Iterable[str] | None = None,
    allowed_networks: Iterable[str] = (),
) -> tuple[Client, Wallet, IssuedCredential]:
    """A client with one wallet (topped up to `balance`) and one credential (with
    `scopes` and `allowed_networks`, see credential_issue)."""
    clean_name = _client_name(name)
    opening = money(balance, field="balance")
    if opening < 0:
        raise ValidationFailed("The opening balance cannot be negative.", field="balance")
    # Checked before anything is written (credential_issue checks them again).
    scopes = None if scopes is None else _scopes(scopes)
    allowed_networks = networks_parse(allowed_networks)
    client, wallet = _client_open(
        name=clean_name, currency=currency, contact_email=contact_email, actor=actor
    )
    if opening > 0:
        wallet_top_up(wallet_id=wallet.pk, amount=opening, actor=actor, note="Opening balance")
        wallet.refresh_from_db()
    issued = credential_issue(
        client=client,
        actor=actor,
        mode=mode,
        scopes=scopes,
        allowed_networks=allowed_networks,
    )
    return client, wallet, issued
