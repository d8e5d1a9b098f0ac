"""Create an API client with a funded wallet and one API credential."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import IntegrityError

from orders.addresses import networks_parse
from orders.enums import ALL_API_SCOPES, ApiScope
from orders.errors import DomainError
from orders.models import ApiCredential, Client
from orders.services.actors import Actor
from orders.services.clients import IssuedCredential, client_create, credential_issue


class Command(BaseCommand):
    help = (
        "Create an API client with a wallet (topped up to --balance) and one API credential. "
        "The secret is printed once and never stored. With --new-credential, issue another "
        "credential for an existing client instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Client name (unique).")
        parser.add_argument("--currency", default=None, help="Wallet currency (default USD).")
        parser.add_argument(
            "--balance", default=None, help="Opening balance, e.g. 1000.00 (default 0.00)."
        )
        parser.add_argument(
            "--mode",
            choices=[mode.value for mode in ApiCredential.Mode],
            default=ApiCredential.Mode.LIVE.value,
            help="live (sk_live_…) or test (sk_test_…).",
        )
        parser.add_argument("--email", default="", help="Contact e-mail of the client.")
        parser.add_argument(
            "--scopes",
            default=None,
            help=(
                "Comma-separated scopes of the credential (default: all): "
                f"{','.join(ALL_API_SCOPES)}."
            ),
        )
        parser.add_argument(
            "--allowed-ips",
            default="",
            help=(
                "Comma-separated IPs or CIDRs (IPv4 or IPv6) the credential may be used "
                "from, e.g. 203.0.113.0/24,2001:db8::/32 (default: any address)."
            ),
        )
        parser.add_argument(
            "--new-credential",
            action="store_true",
            help="Issue one more credential for the existing client NAME; nothing else changes.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON line.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("manage.py create_client")
        name: str = options["name"]
        options["scopes"] = self._scopes(options["scopes"])
        options["allowed_ips"] = self._networks(options["allowed_ips"])
        if options["new_credential"]:
            if options["currency"] is not None or options["balance"] is not None:
                raise CommandError(
                    "--new-credential only issues a key; it takes no --currency or --balance."
                )
            issued = self._issue_for_existing(name=name, actor=actor, options=options)
            client, summary = issued.credential.client, ""
        else:
            client, summary, issued = self._create(name=name, actor=actor, options=options)
        credential = issued.credential

        if options["json"]:
            payload = {
                "client_id": client.pk,
                "api_key": credential.public_key,
                "api_secret": issued.secret,
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"Client:     {client.name} (id {client.pk})\n"
            f"{summary}"
            f"API key:    {credential.public_key}\n"
            f"API secret: {issued.secret}\n"
            f"Scopes:     {' '.join(credential.scopes)}\n"
            f"Allowed IPs: {' '.join(credential.allowed_networks) or 'any'}\n"
            "The secret is shown only this once; store it now. Only its hash is kept."
        )

    def _create(
        self, *, name: str, actor: Actor, options: dict[str, Any]
    ) -> tuple[Client, str, IssuedCredential]:
        email: str = options["email"]
        if email:
            try:
                validate_email(email)
            except ValidationError:
                raise CommandError(f"{email!r} is not a valid e-mail address.") from None
        if Client.objects.filter(name=name.strip()).exists():
            raise CommandError(
                f"A client named {name!r} already exists; nothing was written. "
                "Use --new-credential to issue it another API key."
            )
        try:
            client, wallet, issued = client_create(
                name=name,
                currency=options["currency"] or "USD",
                balance=options["balance"] or "0.00",
                actor=actor,
                mode=options["mode"],
                contact_email=email,
                scopes=options["scopes"],
                allowed_networks=options["allowed_ips"],
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} Nothing was written.") from None
        except IntegrityError:
            # Lost a race with another process creating the same name.
            raise CommandError(f"A client named {name!r} already exists.") from None
        return client, f"Wallet:     {wallet.currency} {wallet.balance}\n", issued

    def _issue_for_existing(
        self, *, name: str, actor: Actor, options: dict[str, Any]
    ) -> IssuedCredential:
        client = Client.objects.filter(name=name.strip()).first()
        if client is None:
            raise CommandError(f"No client named {name!r}.")
        return credential_issue(
            client=client,
            actor=actor,
            mode=options["mode"],
            scopes=options["scopes"],
            allowed_networks=options["allowed_ips"],
        )

    @staticmethod
    def _scopes(raw: str | None) -> list[str] | None:
        """--scopes as a list (None: all), or CommandError naming the valid ones."""
        if raw is None:
            return None
        parts = [part.strip() for part in raw.split(",") if part.strip()]
        if not parts:
            raise CommandError(f"--scopes names no scope; valid: {', '.join(ALL_API_SCOPES)}.")
        try:
            return ApiScope.parse_many(parts)
        except DomainError:
            unknown = [part for part in parts if part not in ALL_API_SCOPES]
            raise CommandError(
                f"Unknown scope {', '.join(unknown)}; valid: {', '.join(ALL_API_SCOPES)}. "
                "Nothing was written."
            ) from None

    @staticmethod
    def _networks(raw: str) -> list[str]:
        """--allowed-ips as normalized networks, or CommandError saying which is wrong."""
        try:
            return networks_parse(part for part in raw.split(",") if part.strip())
        except DomainError as exc:
            raise CommandError(f"--allowed-ips: {exc.message} Nothing was written.") from None
