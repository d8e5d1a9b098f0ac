"""Voucher inventory: encrypted units and the batches they were imported in."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from orders.crypto import EncryptedTextField
from orders.enums import ImportBatchStatus, InventoryStatus, VoucherSource


class ImportBatch(models.Model):
    """One upload of voucher codes: who, when, which file, how many rows."""

    product = models.ForeignKey("orders.Product", on_delete=models.PROTECT, related_name="batches")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=ImportBatchStatus.choices, default=ImportBatchStatus.VALIDATING
    )
    row_count = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.file_name})"


class ImportUpload(models.Model):
    """A validated import file kept for its commit, and its preview (row numbers
    and reasons, never a cell's value). In the database, so the preview may be
    served by one web host and the commit by another; the file itself holds codes
    and PINs, so it is stored encrypted, in chunks of whole lines
    (`ImportUploadChunk`). `complete`: every chunk is written (an invalid file
    keeps only its preview)."""

    batch = models.OneToOneField(
        ImportBatch, on_delete=models.CASCADE, primary_key=True, related_name="upload"
    )
    preview = models.JSONField()
    complete = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"Upload of batch {self.batch_id}"


class ImportUploadChunk(models.Model):
    """Whole lines of a kept import file, encrypted (AES-256-GCM, the voucher keyring)."""

    upload = models.ForeignKey(ImportUpload, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = EncryptedTextField()

    class Meta:
        ordering = ["upload_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "position"], name="importuploadchunk_order")
        ]

    def __str__(self) -> str:
        return f"Chunk {self.position} of batch {self.upload_id}"


class Voucher(models.Model):
    """One unit of inventory. Every secret is encrypted; `fingerprint` is a
    keyed hash of the card number that finds duplicates without decryption."""

    product = models.ForeignKey("orders.Product", on_delete=models.PROTECT, related_name="vouchers")
    denomination = models.DecimalField(max_digits=14, decimal_places=2)
    card_number = EncryptedTextField(null=True, blank=True)
    pin_code = EncryptedTextField(null=True, blank=True)
    voucher_reference_number = EncryptedTextField(null=True, blank=True)
    claim_url = EncryptedTextField(null=True, blank=True)
    card_last4 = models.CharField(
        max_length=4, blank=True, help_text="Last 4 characters of the card number, for masking."
    )
    fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=InventoryStatus.choices, default=InventoryStatus.AVAILABLE
    )
    status_reason = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=8, choices=VoucherSource.choices)
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers"
    )
    vendor = models.ForeignKey(
        "orders.Vendor", null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    allocated_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product_id", "denomination", "expires_at", "id"]
        permissions = [
            ("import_vouchers", "Can import voucher codes"),
            ("block_voucher", "Can block or revoke vouchers"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "fingerprint"], name="voucher_fingerprint_unique_per_product"
            ),
        ]
        indexes = [
            # Allocation: AVAILABLE units of a product/denomination, earliest expiry first.
            models.Index(
                fields=["product", "denomination", "expires_at", "id"],
                name="voucher_allocatable",
                condition=Q(status="AVAILABLE"),
            ),
            models.Index(fields=["product", "denomination", "status"], name="voucher_stock"),
            models.Index(
                fields=["expires_at"], name="voucher_expiry", condition=Q(status="AVAILABLE")
            ),
            models.Index(fields=["batch", "status"], name="voucher_batch_status"),
            # The rollups' refresh: vouchers changed since its last run.
            models.Index(fields=["updated_at"], name="voucher_updated"),
        ]

    def __str__(self) -> str:
        return f"Voucher {self.pk} …{self.card_last4 or '••••'}"

    @property
    def masked_card_number(self) -> str:
        return f"•••• {self.card_last4}" if self.card_last4 else "••••"
