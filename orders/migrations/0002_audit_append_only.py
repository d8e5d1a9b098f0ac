"""On PostgreSQL, reject UPDATE and DELETE on the audit table (append-only)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION orders_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'orders_auditevent is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER orders_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON orders_auditevent
    FOR EACH ROW EXECUTE FUNCTION orders_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS orders_auditevent_no_update_delete ON orders_auditevent;
DROP FUNCTION IF EXISTS orders_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
