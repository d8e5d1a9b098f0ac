"""The file of a voucher import between its preview and its commit.

`voucher_import_validate` checks an upload as it streams; the dashboard then
keeps it here until the inventory admin confirms the preview, and the commit
(`voucher_import_commit`) reads the same lines back and checks their hash
against the batch's. Kept in the database (`ImportUpload`), so any web host
can serve the preview or the commit, encrypted with the voucher keyring in
chunks of whole lines (about CHUNK_CHARS each), so a commit decrypts one
chunk at a time whatever the file's size. A file validated but never
imported is deleted after a day.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders.crypto import unseal
from orders.models import ImportUpload, ImportUploadChunk

CHUNK_CHARS = 1 << 20
KEEP_FOR = timedelta(days=1)


def import_upload_keep(
    *, batch_id: int, lines: Iterable[str] | None, preview: dict[str, Any]
) -> None:
    """Keep a batch's preview and, for a valid file, its lines (as the upload was
    read for validation: text, newlines untranslated). Drops uploads older than
    KEEP_FOR first: their codes are of no use after that."""
    ImportUpload.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()
    with transaction.atomic():
        upload = ImportUpload.objects.create(batch_id=batch_id, preview=preview)
        if lines is None:
            return
        position, pending, size = 0, [], 0
        for line in lines:
            pending.append(line)
            size += len(line)
            if size >= CHUNK_CHARS:
                ImportUploadChunk.objects.create(
                    upload=upload, position=position, text="".join(pending)
                )
                position, pending, size = position + 1, [], 0
        if pending:
            ImportUploadChunk.objects.create(
                upload=upload, position=position, text="".join(pending)
            )
        upload.complete = True
        upload.save(update_fields=["complete"])


def import_upload_preview(*, batch_id: int) -> dict[str, Any] | None:
    """The preview kept for the batch, or None once it is gone."""
    return ImportUpload.objects.filter(batch_id=batch_id).values_list("preview", flat=True).first()


def import_upload_ready(*, batch_id: int) -> bool:
    """Whether the batch's file is kept whole, ready to import."""
    return ImportUpload.objects.filter(batch_id=batch_id, complete=True).exists()


def import_upload_lines(*, batch_id: int) -> Iterator[str] | None:
    """The kept file's lines, decrypted a chunk at a time; None once it is gone."""
    if not import_upload_ready(batch_id=batch_id):
        return None
    chunk_ids = list(
        ImportUploadChunk.objects.filter(upload_id=batch_id)
        .order_by("position")
        .values_list("pk", flat=True)
    )

    def lines() -> Iterator[str]:
        for chunk_id in chunk_ids:
            sealed = ImportUploadChunk.objects.values_list("text", flat=True).get(pk=chunk_id)
            assert sealed is not None  # a chunk is never empty
            # newline="" splits exactly as the upload was split when it was kept.
            yield from io.StringIO(unseal(sealed), newline="")

    return lines()


def import_upload_discard(*, batch_id: int) -> None:
    """Forget the batch's kept file and preview (imported, or of no more use)."""
    ImportUpload.objects.filter(batch_id=batch_id).delete()
