"""Create the staff groups (support, finance, inventory) with their permissions."""

from django.db import migrations

from orders.roles import ROLE_PERMISSIONS, role_grants_apply


def create_roles(apps, schema_editor):
    # Permissions are normally created after migrations; role_grants_apply makes them now.
    role_grants_apply(apps, ROLE_PERMISSIONS)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_audit_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, drop_roles)]
