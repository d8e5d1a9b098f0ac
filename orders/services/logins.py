"""Staff sign-in throttling (django-axes): lockouts and unlocks, audited.

django-axes counts failed sign-ins in its AccessAttempt table; these services
turn its lockouts into audit events and let an admin unlock, audited too.
Passwords are never recorded: axes masks them, and no event carries one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum

from orders.models import AuditEvent
from orders.services.actors import Actor
from orders.services.audit import audit_record

LOCKED_OUT = "auth.locked_out"
UNLOCKED = "auth.unlocked"


def _audited_key(parameter: str, value: str) -> str:
    digest = hashlib.sha256(f"{parameter}:{value}".encode()).hexdigest()
    return f"login-lockout-audited:{digest}"


def _failures(*, since: datetime, **match: str) -> int:
    attempts = AccessAttempt.objects.filter(attempt_time__gte=since, **match)
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


def login_lockout_record(
    *, username: str, actor: Actor, since: datetime, path: str
) -> AuditEvent | None:
    """Audit a sign-in lockout once per locked username or IP address per lockout period.

    An attacker keeps failing while locked out; one event per period and key
    (not one per refused attempt) keeps the trail readable and its chains free.
    """
    limit = settings.AXES_FAILURE_LIMIT
    counts = {
        "username": _failures(since=since, username=username) if username else 0,
        "ip_address": _failures(since=since, ip_address=actor.ip_address)
        if actor.ip_address
        else 0,
    }
    values = {"username": username, "ip_address": actor.ip_address or ""}
    timeout = int(settings.AXES_COOLOFF_TIME.total_seconds())
    newly_locked = [
        parameter
        for parameter, failures in counts.items()
        if failures >= limit and cache.add(_audited_key(parameter, values[parameter]), 1, timeout)
    ]
    if not newly_locked:
        return None
    return audit_record(
        action=LOCKED_OUT,
        actor=actor,
        reason=f"{limit} failed sign-ins within {timeout // 60} minutes",
        data={"username": username, "locked": newly_locked, "failures": counts, "path": path},
    )


@transaction.atomic
def login_attempts_clear(*, attempt_ids: list[int], actor: Actor) -> int:
    """Unlock: delete these failed sign-in records, audited with what was unlocked."""
    attempts = AccessAttempt.objects.select_for_update().filter(pk__in=attempt_ids)
    rows = list(attempts.values_list("username", "ip_address", "failures_since_start"))
    if not rows:
        return 0
    usernames = sorted({username for username, _, _ in rows if username})
    addresses = sorted({address for _, address, _ in rows if address})
    attempts.delete()
    for username in usernames:
        cache.delete(_audited_key("username", username))
    for address in addresses:
        cache.delete(_audited_key("ip_address", address))
    audit_record(
        action=UNLOCKED,
        actor=actor,
        reason="failed sign-in records cleared by an admin",
        data={
            "usernames": usernames,
            "ip_addresses": addresses,
            "failures": sum(failures for _, _, failures in rows),
        },
    )
    return len(rows)
