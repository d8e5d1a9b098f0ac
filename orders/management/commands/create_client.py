"""Create an API client with a funded wallet and one API credential."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import IntegrityError

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
            "--new-credential",
            action="store_true",
            help="Issue one more credential for the existing client NAME; nothing else changes.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON line.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor.system("manage.py create_client")
        name: str = options["name"]
        if options["new_credential"]:
            if options["currency"] is not None or options["balance"] is not None:
                raise CommandError(
                    "--new-credential only issues a key; it takes no --currency or --balance."
                )
            issued = self._issue_for_existing(name=name, mode=options["mode"], actor=actor)
            client, summary = issued.credential.client, ""
        else:
            client, summary, issued = self._create(name=name, actor=actor, options=options)

        if options["json"]:
            payload = {
                "client_id": client.pk,
                "api_key": issued.credential.public_key,
                "api_secret": issued.secret,
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"Client:     {client.name} (id {client.pk})\n"
            f"{summary}"
            f"API key:    {issued.credential.public_key}\n"
            f"API secret: {issued.secret}\n"
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
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} Nothing was written.") from None
        except IntegrityError:
            # Lost a race with another process creating the same name.
            raise CommandError(f"A client named {name!r} already exists.") from None
        return client, f"Wallet:     {wallet.currency} {wallet.balance}\n", issued

    def _issue_for_existing(self, *, name: str, mode: str, actor: Actor) -> IssuedCredential:
        client = Client.objects.filter(name=name.strip()).first()
        if client is None:
            raise CommandError(f"No client named {name!r}.")
        return credential_issue(client=client, actor=actor, mode=mode)
