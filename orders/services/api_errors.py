"""Recent API errors of each client: the answers of status 400 and above that the
API gave an identified credential, kept API_ERROR_RETENTION for the clients
workspace of the dashboard (orders/api/error_records.py calls `api_error_record`).

Cheap by design: one INSERT per error answer, no lock, not audited (it records
what the API said, nobody changed anything). Repeats of the answers a caller can
repeat at no cost to itself, a 429 and an IP refusal (counted before any limit),
are kept at most once a minute per credential (a cache claim). The worker's
maintenance sweep deletes records older than the retention, in batches.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from orders.logs import log_path
from orders.models import ApiErrorRecord

API_ERROR_RETENTION = timedelta(days=30)
# Error codes kept at most once a minute per credential.
COALESCED_CODES = frozenset({"rate_limited", "ip_not_allowed"})
PRUNE_BATCH = 5000
PRUNE_BATCHES_PER_SWEEP = 20  # at most 100,000 rows a sweep; the next one goes on


def api_error_record(
    *,
    client_id: int,
    credential_id: int,
    status: int,
    error_code: str,
    method: str,
    path: str,
    request_id: str = "",
) -> ApiErrorRecord | None:
    """Record one error answer (`path` without its query string: it could carry
    anything a partner typed); None when it repeats a coalesced one of this minute."""
    if error_code in COALESCED_CODES:
        minute = int(time.time() // 60)
        if not cache.add(f"api:err:{credential_id}:{error_code}:{minute}", 1, timeout=60):
            return None
    return ApiErrorRecord.objects.create(
        client_id=client_id,
        credential_id=credential_id,
        status=status,
        error_code=error_code[:64],
        method=method[:10],
        path=log_path(path.split("?", 1)[0])[:300],
        request_id=request_id[:128],
    )


def api_errors_prune(*, now: datetime | None = None) -> int:
    """Delete the records older than API_ERROR_RETENTION, a batch at a time (at
    most PRUNE_BATCHES_PER_SWEEP batches); how many were deleted."""
    cutoff = (now or timezone.now()) - API_ERROR_RETENTION
    deleted = 0
    for _ in range(PRUNE_BATCHES_PER_SWEEP):
        batch = list(
            ApiErrorRecord.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not batch:
            break
        deleted += ApiErrorRecord.objects.filter(pk__in=batch).delete()[0]
    return deleted
