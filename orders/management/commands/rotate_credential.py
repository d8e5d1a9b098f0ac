"""Rotate an API credential's secret, with an overlap in which both work."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.errors import DomainError
from orders.models import ApiCredential
from orders.services.actors import Actor
from orders.services.clients import credential_rotate


class Command(BaseCommand):
    help = (
        "Give an API credential a new secret, printed once and never stored; the old "
        "secret keeps working for --overlap-seconds (default API_SECRET_ROTATION_OVERLAP_SECONDS) "
        "so the partner can deploy the new one first. The key, scopes and allowlist stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("public_key", help="The credential's key (sk_live_… / sk_test_…).")
        parser.add_argument(
            "--overlap-seconds",
            type=int,
            default=None,
            help=(
                "How long the old secret still works "
                f"(default {settings.API_SECRET_ROTATION_OVERLAP_SECONDS}; 0: not at all)."
            ),
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON line.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = ApiCredential.objects.filter(public_key=options["public_key"]).first()
        if credential is None:
            raise CommandError(f"No credential has the key {options['public_key']!r}.")
        try:
            issued = credential_rotate(
                credential_id=credential.pk,
                actor=Actor.system("manage.py rotate_credential"),
                overlap_seconds=options["overlap_seconds"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        until = issued.credential.previous_secret_valid_until
        if options["json"]:
            payload = {
                "api_key": issued.credential.public_key,
                "api_secret": issued.secret,
                "previous_secret_valid_until": until.isoformat() if until else None,
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"Key:        {issued.credential.public_key}\n"
            f"New secret: {issued.secret}   (shown once; store it now)\n"
            + (
                f"The old secret works until {until.isoformat()}."
                if until
                else "The old secret no longer works."
            )
        )
