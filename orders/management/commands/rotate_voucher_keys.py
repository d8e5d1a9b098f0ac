"""Re-encrypt every stored secret that is not under the active voucher key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from orders.crypto import PREFIX, EncryptedTextField, Sealed, keyring
from orders.errors import DecryptionFailed


def encrypted_columns() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every (model, field) holding ciphertext, so a new encrypted field is never missed."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


def _stale(field: EncryptedTextField, active_kid: str) -> models.Q:
    # The stored value starts with "enc:v1:<kid>:"; the pattern lookup compares
    # raw column text and never goes through the field's encryption.
    return models.Q(**{f"{field.name}__isnull": False}) & ~models.Q(
        **{f"{field.name}__startswith": f"{PREFIX}{active_kid}:"}
    )


class Command(BaseCommand):
    help = (
        "Re-encrypt voucher and webhook secrets to the active key of VOUCHER_KEYS (the first). "
        "Keep the old keys after the active one until this has run, then remove them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="Rows per transaction (default 1000)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count the values that would change."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        ring = keyring()
        active = ring.active_kid
        self.stdout.write(f"Active key: {active} (keyring: {', '.join(ring.key_ids)})")
        total = 0
        for model, field in encrypted_columns():
            label = f"{model._meta.label_lower}.{field.name}"
            stale = model._default_manager.filter(_stale(field, active))
            if options["dry_run"]:
                count = stale.count()
                self.stdout.write(f"{label}: {count} would be re-encrypted")
            else:
                count = self._rotate(model=model, field=field, active=active, batch_size=batch_size)
                self.stdout.write(f"{label}: {count} re-encrypted")
            total += count
        verb = "would be re-encrypted" if options["dry_run"] else "re-encrypted"
        self.stdout.write(f"Total: {total} value(s) {verb} to key {active}.")

    def _rotate(
        self,
        *,
        model: type[models.Model],
        field: EncryptedTextField,
        active: str,
        batch_size: int,
    ) -> int:
        manager = model._default_manager
        ring = keyring()
        rotated, last_pk = 0, None
        while True:
            with transaction.atomic():
                batch = manager.filter(_stale(field, active))
                if last_pk is not None:
                    batch = batch.filter(pk__gt=last_pk)
                rows = list(
                    batch.select_for_update().order_by("pk").only("pk", field.attname)[:batch_size]
                )
                if not rows:
                    return rotated
                for row in rows:
                    value = getattr(row, field.attname)
                    if not isinstance(value, Sealed):
                        raise CommandError(f"{field.aad} of row {row.pk} is not ciphertext.")
                    try:
                        plaintext = ring.unseal(value)
                    except DecryptionFailed as exc:
                        raise CommandError(
                            f"Row {row.pk}: {exc.message} Add the old key to VOUCHER_KEYS after "
                            f"the active one and run again; {rotated} value(s) of {field.aad} "
                            "were already rotated and stay rotated."
                        ) from None
                    setattr(row, field.attname, ring.seal(plaintext, aad=value.aad))
                manager.bulk_update(rows, [field.name])
                rotated += len(rows)
                last_pk = rows[-1].pk
