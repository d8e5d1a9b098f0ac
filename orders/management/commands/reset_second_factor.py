"""manage.py reset_second_factor USERNAME --reason "...": for the operator when no other
admin can use the admin's audited reset (the only admin lost their phone)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.errors import DomainError
from orders.services.actors import Actor
from orders.services.second_factor import second_factor_reset


class Command(BaseCommand):
    help = (
        "Remove every second factor of a staff user (authenticator app, passkeys, recovery "
        "codes), audited with the reason; they enrol again at their next sign-in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="Why, for the audit trail.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user is called {options['username']!r}.")
        try:
            removed = second_factor_reset(
                user=user,
                actor=Actor.system("manage.py reset_second_factor"),
                reason=options["reason"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Removed {removed} second factor(s) of {user.get_username()}; "
            "they enrol again at their next sign-in."
        )
