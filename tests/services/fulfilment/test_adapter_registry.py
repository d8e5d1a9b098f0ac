"""Vendor adapters come from the registry: a database value is a key, never imported."""

from __future__ import annotations

import importlib
import sys

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.exceptions import ValidationError

from orders.enums import OrderStatus, SubStatus
from orders.models import AuditEvent, Vendor
from orders.services.fulfilment import order_fulfil
from orders.vendors import get_adapter
from orders.vendors.registry import UnknownVendorAdapter, adapter_choices
from orders.vendors.simulated import SimulatedVendor

pytestmark = pytest.mark.django_db


def test_an_unknown_adapter_key_fails_the_order_with_a_clear_reason_and_imports_nothing(
    buyer, product
):
    # As if a row was edited behind the admin's back: the value is never imported.
    Vendor.objects.filter(pk=product.vendor_id).update(adapter="this.s")
    sys.modules.pop("this", None)

    order = order_fulfil(order_id=buyer.place(product, "NO-STOCK-1").pk)

    assert "this" not in sys.modules
    assert order.status == OrderStatus.FAILED
    assert "'this.s' is not registered" in order.failure_reason
    assert order.status_changes.filter(to_sub_status=SubStatus.VENDOR_ORDER_FAILED).exists()
    order.refresh_from_db()
    assert order.refund_status == "REFUNDED"  # the wallet gets its money back


def test_model_validation_refuses_an_unregistered_adapter():
    vendor = Vendor(code="evil", name="Evil", adapter="os.system")

    with pytest.raises(ValidationError) as refused:
        vendor.full_clean()

    assert "'os.system' is not a registered vendor adapter." in str(refused.value)


def test_vendor_adapters_setting_adds_a_key(settings, product):
    settings.VENDOR_ADAPTERS = {"acme": "orders.vendors.simulated.SimulatedVendor"}
    Vendor.objects.filter(pk=product.vendor_id).update(adapter="acme")
    product.vendor.refresh_from_db()

    assert ("acme", "acme") in adapter_choices()
    assert isinstance(get_adapter(product.vendor), SimulatedVendor)
    assert not [m for m in run_checks() if m.id == "orders.E010"]


def test_a_broken_vendor_adapters_setting_is_a_system_check_error(settings):
    settings.VENDOR_ADAPTERS = {"acme": "orders.vendors.nowhere.Adapter"}

    errors = [m for m in run_checks() if m.id == "orders.E010"]

    assert len(errors) == 1
    assert "cannot import orders.vendors.nowhere.Adapter" in errors[0].msg


def test_get_adapter_raises_for_unknown_key_without_importing(product):
    product.vendor.adapter = "this.s"
    sys.modules.pop("this", None)

    with pytest.raises(UnknownVendorAdapter):
        get_adapter(product.vendor)

    assert "this" not in sys.modules
    assert not AuditEvent.objects.exists()


def test_migration_turns_the_simulated_dotted_path_into_its_key():
    migration = importlib.import_module("orders.migrations.0007_vendor_adapter_registry")
    old = Vendor.objects.create(code="old", name="Old")
    other = Vendor.objects.create(code="other", name="Other")
    Vendor.objects.filter(pk=old.pk).update(adapter="orders.vendors.simulated.SimulatedVendor")
    Vendor.objects.filter(pk=other.pk).update(adapter="partner.adapters.Real")

    migration.adapters_to_keys(apps, None)

    old.refresh_from_db()
    other.refresh_from_db()
    assert old.adapter == "simulated"
    assert other.adapter == "partner.adapters.Real"  # left alone: fails safely, never imported
