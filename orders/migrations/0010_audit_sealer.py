"""Audit events are written unsealed and sealed later, in batches, by `audit_seal`.

`sealed_at` is new; `seq`, `prev_hash` and `hash` stay empty until an event is
sealed. Every existing event is already sealed: its `sealed_at` becomes its
`created_at`. A partial index holds only the unsealed backlog (the sealer and
the seal-lag query read it). On PostgreSQL the append-only trigger function is
replaced: UPDATE, DELETE and TRUNCATE are still refused, to the owner too,
except one UPDATE per event: sealing a not yet sealed event, which may set only
seq, prev_hash, hash and sealed_at (see docs/decisions/0005-audit-sealer.md).
Going back seals the backlog first; an event it cannot seal (its key is not in
AUDIT_KEY) stops it.
"""

from django.db import migrations, models

SEAL_COLUMNS = "ARRAY['seq', 'prev_hash', 'hash', 'sealed_at']"

SEALABLE = f"""
CREATE OR REPLACE FUNCTION orders_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    -- The one UPDATE allowed: the seal of a not yet sealed event, set once, and
    -- every other column (the content the seal's HMAC covers) unchanged.
    IF TG_OP = 'UPDATE' THEN
        IF OLD.sealed_at IS NULL AND NEW.sealed_at IS NOT NULL AND NEW.seq IS NOT NULL
           AND (to_jsonb(NEW) - {SEAL_COLUMNS})::text = (to_jsonb(OLD) - {SEAL_COLUMNS})::text
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'orders_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only sealing a not yet sealed event, once, may update it.';
END;
$$ LANGUAGE plpgsql;
"""
APPEND_ONLY = """
CREATE OR REPLACE FUNCTION orders_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'orders_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    AuditEvent = apps.get_model("orders", "AuditEvent")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SEALABLE, params=None)
        # Allowed by the new trigger: these rows have their seq and hash already.
        schema_editor.execute(
            "UPDATE orders_auditevent SET sealed_at = created_at WHERE sealed_at IS NULL"
        )
    else:
        AuditEvent.objects.filter(sealed_at__isnull=True).update(sealed_at=models.F("created_at"))


def backwards(apps, schema_editor):
    # The schema before 0010 has no unsealed event: seal the backlog first, with
    # today's sealer (the columns it writes exist until this migration is undone).
    from orders.services.audit import audit_seal

    while audit_seal():
        pass
    AuditEvent = apps.get_model("orders", "AuditEvent")
    unsealed = AuditEvent.objects.filter(sealed_at__isnull=True).count()
    if unsealed:
        raise RuntimeError(
            f"{unsealed} audit event(s) could not be sealed (is their key in AUDIT_KEY?): "
            "seal them (manage.py check_audit_chain --seal), then migrate back."
        )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


class Migration(migrations.Migration):
    dependencies = [("orders", "0009_order_lease")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="sealed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("sealed_at__isnull", True)),
                fields=["chain", "id"],
                name="auditevent_unsealed",
            ),
        ),
    ]
