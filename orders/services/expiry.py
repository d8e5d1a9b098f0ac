"""Voucher expiry: AVAILABLE units past their expiry date are blocked, in audited batches."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders.enums import InventoryStatus
from orders.models import Voucher
from orders.rules import expired_stock_q
from orders.services.actors import Actor
from orders.services.audit import audit_record

EXPIRED_REASON = "expired"


def vouchers_expire(*, actor: Actor, now: datetime | None = None, batch_size: int = 500) -> int:
    """Block AVAILABLE vouchers past expires_at (reason "expired"), one audit event per batch."""
    cutoff = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                Voucher.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(expired_stock_q(now=cutoff))
                .order_by("expires_at", "id")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return total
            changed = Voucher.objects.filter(pk__in=ids, status=InventoryStatus.AVAILABLE).update(
                status=InventoryStatus.BLOCKED, status_reason=EXPIRED_REASON, updated_at=cutoff
            )
            products = sorted(
                set(Voucher.objects.filter(pk__in=ids).values_list("product_id", flat=True))
            )
            audit_record(
                action="voucher.expire_batch",
                actor=actor,
                reason=EXPIRED_REASON,
                data={"count": changed, "voucher_ids": ids, "product_ids": products},
            )
            total += changed
        if len(ids) < batch_size:
            return total
