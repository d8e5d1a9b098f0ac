"""The demo's people: staff logins, and clients with a wallet, a credential and money.

Clients come from `client_create` (opening balance and credential included);
the mid-month top-up is a finance request above the second-approval limit,
approved by the admin (`wallet_credit_request` / `wallet_credit_decide`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from orders.demo.backdate import Backdates
from orders.demo.catalog import ClientSpec
from orders.management.commands.create_staff import staff_upsert
from orders.models import ApiCredential, Client, Wallet, WalletCreditRequest, WalletEntry
from orders.services.actors import Actor
from orders.services.clients import client_create, credential_issue, wallet_open
from orders.services.wallets import wallet_credit_decide, wallet_credit_request, wallet_top_up

DEMO_PASSWORD = "starship-demo"  # noqa: S105 - documented demo login, never used in production
STAFF_ROLES = ["support", "finance", "inventory", "admin"]
MID_MONTH_TOP_UP_NOTE = "Demo top-up (mid-month)"
REFILL = "10000.00"


@dataclass(frozen=True)
class Staff:
    """The demo's staff as actors, and the system actor that seeds."""

    support: Actor
    finance: Actor
    inventory: Actor
    admin: Actor
    system: Actor


@dataclass(frozen=True)
class DemoClient:
    spec: ClientSpec
    client: Client
    wallet: Wallet
    credential: ApiCredential

    @property
    def api(self) -> Actor:
        return Actor.for_credential(self.credential)


def staff_ensure(*, lines: list[str]) -> Staff:
    """The four demo logins, created once (an existing one is left as it is)."""
    users: dict[str, Any] = {}
    user_model = get_user_model()
    lines.append(f"Staff logins (password {DEMO_PASSWORD!r} unless changed since):")
    demo_hash: str | None = None
    for role in STAFF_ROLES:
        user: Any = user_model.objects.filter(username=role).first()
        if user is None:
            # One hash for all demo logins: hashing is deliberately slow.
            demo_hash = demo_hash or make_password(DEMO_PASSWORD)
            user, _ = staff_upsert(
                username=role,
                role=role,
                password=DEMO_PASSWORD,
                password_hash=demo_hash,
                email=f"{role}@example.com",
            )
            state = "created"
        else:
            state = "exists, left unchanged"
        shown = "admin (superuser)" if role == "admin" else role
        lines.append(f"  {role:<10} role {shown:<18} {state}")
        users[role] = user
    return Staff(
        support=Actor.for_user(users["support"]),
        finance=Actor.for_user(users["finance"]),
        inventory=Actor.for_user(users["inventory"]),
        admin=Actor.for_user(users["admin"]),
        system=Actor.system("seed_demo"),
    )


def client_ensure(
    spec: ClientSpec, *, staff: Staff, opened_at: datetime, backdates: Backdates, lines: list[str]
) -> DemoClient:
    """The client, funded once with its opening balance, and a credential; the secret
    of a new credential is printed this once, an existing one cannot be."""
    client = Client.objects.filter(name=spec.name).first()
    if client is None:
        client, wallet, issued = client_create(
            name=spec.name,
            currency=spec.currency,
            balance=spec.opening,
            actor=staff.system,
            contact_email=spec.email,
        )
        backdates.entries_at(wallet.entries.all(), when=opened_at)
        _print_secret(lines, spec, issued.credential, issued.secret)
        return DemoClient(spec, client, wallet, issued.credential)
    wallet = wallet_open(client=client, currency=spec.currency)
    if not wallet.entries.exists():
        wallet_top_up(
            wallet_id=wallet.pk, amount=spec.opening, actor=staff.system, note="Opening balance"
        )
        backdates.entries_at(wallet.entries.all(), when=opened_at)
        wallet.refresh_from_db()
    credential = client.credentials.filter(revoked_at__isnull=True).order_by("created_at").first()
    if credential is None:
        issued = credential_issue(client=client, actor=staff.system)
        _print_secret(lines, spec, issued.credential, issued.secret)
        return DemoClient(spec, client, wallet, issued.credential)
    lines.append(
        f"{spec.name} ({spec.currency}): credential {credential.public_key} exists; its "
        "secret is not stored. Issue a new one with:\n"
        f'  python manage.py create_client "{spec.name}" --new-credential'
    )
    return DemoClient(spec, client, wallet, credential)


def _print_secret(
    lines: list[str], spec: ClientSpec, credential: ApiCredential, secret: str
) -> None:
    lines.append(
        f"{spec.name} ({spec.currency}): new API credential, shown only this once:\n"
        f"  API key:    {credential.public_key}\n"
        f"  API secret: {secret}"
    )


def mid_month_top_up_done(demo: DemoClient) -> bool:
    return demo.wallet.entries.filter(note=MID_MONTH_TOP_UP_NOTE).exists()


def mid_month_top_up(
    demo: DemoClient, *, staff: Staff, at: datetime, backdates: Backdates
) -> WalletEntry:
    """Finance asks for the client's wire; above the second-approval limit the admin
    approves it. Dated just before `at`."""
    outcome = wallet_credit_request(
        wallet_id=demo.wallet.pk,
        kind="TOP_UP",
        amount=demo.spec.mid_month,
        actor=staff.finance,
        reason=MID_MONTH_TOP_UP_NOTE,
    )
    if outcome.request is not None:
        request_id = outcome.request.pk
        outcome = wallet_credit_decide(
            request_id=request_id, actor=staff.admin, decision="APPROVE", note="Wire received"
        )
        WalletCreditRequest.objects.filter(pk=request_id).update(
            requested_at=at - timedelta(hours=3), decided_at=at - timedelta(minutes=1)
        )
    assert outcome.entry is not None
    backdates.entries_at([outcome.entry], when=at - timedelta(minutes=1))
    return outcome.entry


def wallet_refill(demo: DemoClient, *, staff: Staff, at: datetime, backdates: Backdates) -> None:
    """Only when someone spent a demo wallet down by hand: refill it and carry on."""
    entry = wallet_top_up(
        wallet_id=demo.wallet.pk, amount=REFILL, actor=staff.system, note="Demo top-up"
    )
    backdates.entries_at([entry], when=at - timedelta(minutes=1))
