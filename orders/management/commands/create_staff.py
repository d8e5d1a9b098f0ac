"""Create or update a staff user with one role (support, finance, inventory, admin)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from orders.roles import ROLE_PERMISSIONS, ROLES


@transaction.atomic
def staff_upsert(
    *,
    username: str,
    role: str,
    password: str | None,
    email: str | None = None,
    password_hash: str | None = None,
) -> tuple[AbstractUser, bool]:
    """Give `username` exactly one role; returns (user, created).

    "admin" is a superuser; the other roles are staff in the group of that name.
    A password of None keeps the existing one (a new user needs one).
    `password_hash`, the already-hashed `password`, saves hashing it again.
    """
    if role not in ROLES:
        raise CommandError(f"Unknown role {role!r}; expected one of: {', '.join(ROLES)}.")
    try:
        UnicodeUsernameValidator()(username)
        if email:
            validate_email(email)
    except ValidationError as exc:
        raise CommandError(" ".join(exc.messages)) from None
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    created = user is None
    if user is None:
        if not password:
            raise CommandError(f"{username!r} is a new user: --password is required.")
        user = user_model(username=username)
    if email is not None:
        user.email = email
    user.is_active = True
    user.is_staff = True
    user.is_superuser = role == "admin"
    if password:
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        if password_hash is not None:
            user.password = password_hash
        else:
            user.set_password(password)
    user.save()
    # One role at a time: leaving finance for support must drop finance rights.
    other_roles = Group.objects.filter(name__in=ROLE_PERMISSIONS).exclude(name=role)
    user.groups.remove(*other_roles)
    if role in ROLE_PERMISSIONS:
        group = Group.objects.filter(name=role).first()
        if group is None:
            raise CommandError(f"Group {role!r} is missing: run `manage.py migrate` first.")
        user.groups.add(group)
    return user, created


class Command(BaseCommand):
    help = (
        "Create a staff user with a role, or update the role/password of an existing one. "
        "admin = superuser; support, finance and inventory are groups."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument(
            "--password", default=None, help="Required for a new user; omit to keep it."
        )
        parser.add_argument("--email", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = staff_upsert(
            username=options["username"],
            role=options["role"],
            password=options["password"],
            email=options["email"],
        )
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} staff user {user.get_username()!r} with role {options['role']}.")
