"""Vendor adapters become registry keys; price changes get their own table and approvers.

Existing Vendor.adapter values that are the dotted path of a registered adapter
become its key. Any other value is left as it is: it is no registered key, so
that vendor's orders fail with a clear error (nothing is imported) until an
administrator picks a registered adapter in the admin.
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
import orders.vendors.registry
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models

from orders.roles import role_grants_apply, role_grants_remove
from orders.vendors.registry import BUILTIN_ADAPTERS

# Permissions this migration grants (0003 made the roles; it cannot name a
# permission of a model that did not exist yet).
GRANTS = {
    "finance": ["orders.view_pricechange", "orders.approve_price_change"],
    "inventory": ["orders.view_pricechange"],
}


def adapters_to_keys(apps, schema_editor):
    Vendor = apps.get_model("orders", "Vendor")
    for key, (_label, path) in BUILTIN_ADAPTERS.items():
        Vendor.objects.filter(adapter=path).update(adapter=key)
    unknown = Vendor.objects.exclude(adapter__in=list(BUILTIN_ADAPTERS)).values_list(
        "code", flat=True
    )
    for code in unknown:
        print(f"\n  vendor {code!r}: adapter is not a registered key; pick one in the admin")


def adapters_to_paths(apps, schema_editor):
    Vendor = apps.get_model("orders", "Vendor")
    for key, (_label, path) in BUILTIN_ADAPTERS.items():
        Vendor.objects.filter(adapter=key).update(adapter=path)


def grant_price_change_permissions(apps, schema_editor):
    role_grants_apply(apps, GRANTS)


def revoke_price_change_permissions(apps, schema_editor):
    role_grants_remove(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0006_wallet_credit_requests"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="product",
            name="discount_percent",
            field=models.DecimalField(
                decimal_places=3,
                default=Decimal("0"),
                max_digits=6,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0")),
                    django.core.validators.MaxValueValidator(Decimal("100")),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="fee_fixed",
            field=models.DecimalField(
                decimal_places=2,
                default=Decimal("0.00"),
                max_digits=14,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="fee_percent",
            field=models.DecimalField(
                decimal_places=3,
                default=Decimal("0"),
                max_digits=6,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0")),
                    django.core.validators.MaxValueValidator(Decimal("100")),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="product",
            name="tax_percent",
            field=models.DecimalField(
                decimal_places=3,
                default=Decimal("0"),
                max_digits=6,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0")),
                    django.core.validators.MaxValueValidator(Decimal("100")),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="vendor",
            name="adapter",
            field=models.CharField(
                choices=orders.vendors.registry.adapter_choices,
                default="simulated",
                error_messages={"invalid_choice": "%(value)r is not a registered vendor adapter."},
                help_text="A registered vendor adapter (adapters are added in code or settings only).",
                max_length=200,
            ),
        ),
        migrations.CreateModel(
            name="PriceChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("changes", models.JSONField()),
                ("approval_reasons", models.JSONField(blank=True, default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("PENDING", "Pending approval"),
                            ("APPLIED", "Applied (under the approval limits)"),
                            ("APPROVED", "Approved and applied"),
                            ("REJECTED", "Rejected"),
                        ],
                        max_length=8,
                    ),
                ),
                ("requested_label", models.CharField(max_length=150)),
                ("requested_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("applied_at", models.DateTimeField(blank=True, null=True)),
                ("decision_note", models.CharField(blank=True, max_length=500)),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "product",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="price_changes",
                        to="orders.product",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-requested_at", "-id"],
                "permissions": [("approve_price_change", "Can approve or reject price changes")],
                "indexes": [
                    models.Index(fields=["product", "requested_at"], name="pricechange_product"),
                    models.Index(
                        condition=models.Q(("status", "PENDING")),
                        fields=["requested_at"],
                        name="pricechange_pending",
                    ),
                ],
            },
        ),
        migrations.RunPython(adapters_to_keys, adapters_to_paths),
        migrations.RunPython(grant_price_change_permissions, revoke_price_change_permissions),
    ]
