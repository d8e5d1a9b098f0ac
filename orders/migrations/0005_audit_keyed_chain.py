"""Key the audit chains with HMAC (AUDIT_KEY) and refuse TRUNCATE on PostgreSQL.

Events written before this migration were sealed with an unkeyed SHA-256,
which anyone with write access can recompute. The migration verifies those
chains first (a broken legacy chain stops it, see
docs/decisions/0002-audit-keyed-chain.md), then re-seals every event in place
under the active AUDIT_KEY, as the table owner, with the UPDATE trigger
disabled only inside this migration's transaction. The digests are frozen
here so that later changes to orders.services.audit cannot change history.
"""

import hashlib
import json
import logging
import os

from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models

GENESIS = "0" * 64
ROW_TRIGGER = "orders_auditevent_no_update_delete"
logger = logging.getLogger("orders.migrations")

CREATE_TRUNCATE_TRIGGER = """
CREATE TRIGGER orders_auditevent_no_truncate
    BEFORE TRUNCATE ON orders_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION orders_auditevent_append_only();
"""
DROP_TRUNCATE_TRIGGER = "DROP TRIGGER IF EXISTS orders_auditevent_no_truncate ON orders_auditevent;"


def _canonical(event, *, with_key_id):
    body = {
        "chain": event.chain,
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "action": event.action,
        "actor_user_id": event.actor_user_id,
        "actor_credential_id": event.actor_credential_id,
        "actor_label": event.actor_label,
        "order_id": event.order_id,
        "voucher_id": event.voucher_id,
        "reason": event.reason,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "data": event.data,
        "created_at": event.created_at.isoformat(),
    }
    if with_key_id:
        body["key_id"] = event.key_id
    return json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()


def legacy_digest(event):
    """The unkeyed SHA-256 of 0001-0004."""
    return hashlib.sha256(_canonical(event, with_key_id=False)).hexdigest()


def _keyed_digest(keyring):
    def digest(event):
        return keyring.mac(_canonical(event, with_key_id=True), kid=event.key_id)

    return digest


def _problems(AuditEvent, AuditChainHead, digest):
    heads = {head.chain: head for head in AuditChainHead.objects.all()}
    chains = set(heads) | set(AuditEvent.objects.values_list("chain", flat=True).distinct())
    for chain in sorted(chains):
        prev_hash, expected_seq = GENESIS, 1
        for event in AuditEvent.objects.filter(chain=chain).order_by("seq").iterator(2000):
            if event.seq != expected_seq:
                yield f"chain {chain} seq {expected_seq}: event missing"
            if event.prev_hash != prev_hash:
                yield f"chain {chain} seq {event.seq}: link to previous event broken"
            if digest(event) != event.hash:
                yield f"chain {chain} seq {event.seq}: content changed after it was written"
            prev_hash, expected_seq = event.hash, event.seq + 1
        head = heads.get(chain)
        if head is not None and (head.seq != expected_seq - 1 or head.last_hash != prev_hash):
            yield f"chain {chain} seq {head.seq}: chain head does not match the last event"


def _reseal(apps, schema_editor, *, verify, seal, key_id):
    AuditEvent = apps.get_model("orders", "AuditEvent")
    AuditChainHead = apps.get_model("orders", "AuditChainHead")
    if not AuditEvent.objects.exists():
        return
    problems = list(_problems(AuditEvent, AuditChainHead, verify))
    if problems:
        for problem in problems:
            logger.warning("audit trail before re-sealing: %s", problem)
        if os.environ.get("AUDIT_RESEAL_BROKEN") != "1":
            raise RuntimeError(
                f"The audit trail fails verification ({len(problems)} problem(s), first: "
                f"{problems[0]}); it is not re-sealed. Investigate (restore a good copy), or set "
                "AUDIT_RESEAL_BROKEN=1 to re-seal it as it is."
            )
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER TABLE orders_auditevent DISABLE TRIGGER {ROW_TRIGGER}")
    for head in AuditChainHead.objects.order_by("chain"):
        prev_hash, batch = GENESIS, []
        events = AuditEvent.objects.filter(chain=head.chain).order_by("seq")
        for event in events.iterator(2000):
            event.prev_hash, event.key_id = prev_hash, key_id
            event.hash = seal(event)
            prev_hash = event.hash
            batch.append(event)
            if len(batch) == 1000:
                AuditEvent.objects.bulk_update(batch, ["prev_hash", "key_id", "hash"])
                batch = []
        AuditEvent.objects.bulk_update(batch, ["prev_hash", "key_id", "hash"])
        head.last_hash = prev_hash
        head.save(update_fields=["last_hash"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE orders_auditevent ENABLE TRIGGER {ROW_TRIGGER}")


def forwards(apps, schema_editor):
    from orders.crypto import audit_keyring

    if apps.get_model("orders", "AuditEvent").objects.exists():
        keyring = audit_keyring()
        seal = _keyed_digest(keyring)
        _reseal(apps, schema_editor, verify=legacy_digest, seal=seal, key_id=keyring.active_kid)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_TRUNCATE_TRIGGER)


def backwards(apps, schema_editor):
    from orders.crypto import audit_keyring

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRUNCATE_TRIGGER)
    if apps.get_model("orders", "AuditEvent").objects.exists():
        verify = _keyed_digest(audit_keyring())
        _reseal(apps, schema_editor, verify=verify, seal=legacy_digest, key_id="")


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_refund_review")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(default="", max_length=16),
        ),
        migrations.RunPython(forwards, backwards),
    ]
