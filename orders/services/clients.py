"""Clients, their API credentials and wallets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from orders.errors import ValidationFailed
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


@transaction.atomic
def credential_issue(
    *, client: Client, actor: Actor, mode: str = ApiCredential.Mode.LIVE, label: str = ""
) -> IssuedCredential:
    """Create a key + secret pair; only the SHA-256 of the secret is kept."""
    prefix = "sk_test_" if mode == ApiCredential.Mode.TEST else "sk_live_"
    public_key = prefix + secrets.token_hex(12)
    secret = secrets.token_urlsafe(32)
    credential = ApiCredential.objects.create(
        client=client,
        mode=mode,
        label=label,
        public_key=public_key,
        secret_hash=ApiCredential.hash_secret(secret),
    )
    audit_record(action="credential.issue", actor=actor, data={"public_key": public_key})
    return IssuedCredential(credential=credential, secret=secret)


@transaction.atomic
def credential_revoke(*, credential_id: int, actor: Actor) -> ApiCredential:
    """Revoke a credential; it answers 401 from then on."""
    credential = ApiCredential.objects.select_for_update(no_key=True).get(pk=credential_id)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at"])
        # The API caches credential lookups for a few seconds; revoke at once.
        cache.delete_many(
            [
                ApiCredential.cache_key(public_key=credential.public_key),
                ApiCredential.cache_key(pk=credential.pk),
            ]
        )
        audit_record(
            action="credential.revoke", actor=actor, data={"public_key": credential.public_key}
        )
    return credential


@transaction.atomic
def wallet_open(*, client: Client, currency: str) -> Wallet:
    """The client's wallet in `currency`, created empty if missing."""
    wallet, _ = Wallet.objects.get_or_create(client=client, currency=_currency(currency))
    return wallet


@transaction.atomic
def client_create(
    *,
    name: str,
    currency: str,
    balance: object = "0.00",
    actor: Actor,
    mode: str = ApiCredential.Mode.LIVE,
    contact_email: str = "",
) -> tuple[Client, Wallet, IssuedCredential]:
    """A client with one wallet (topped up to `balance`) and one credential."""
    if not name.strip():
        raise ValidationFailed("A client needs a name.", field="name")
    if Client.objects.filter(name=name.strip()).exists():
        raise ValidationFailed(f"A client named {name!r} already exists.", field="name")
    opening = money(balance, field="balance")
    if opening < 0:
        raise ValidationFailed("The opening balance cannot be negative.", field="balance")
    client = Client.objects.create(name=name.strip(), contact_email=contact_email)
    wallet = wallet_open(client=client, currency=currency)
    if opening > 0:
        wallet_top_up(wallet_id=wallet.pk, amount=opening, actor=actor, note="Opening balance")
        wallet.refresh_from_db()
    issued = credential_issue(client=client, actor=actor, mode=mode)
    return client, wallet, issued
