"""The admin as an insider sees it: no code paths, no unaudited repricing, each role its job.

Every request here is a real admin GET/POST by a signed-in staff user.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

import pytest
from django import forms
from django.test import Client as HttpClient
from django.urls import reverse

from orders import rules
from orders.models import AuditEvent, PriceChange, Product, Vendor
from orders.services.audit import audit_record
from tests.factories import ProductFactory, UserFactory, VendorFactory, add_stock
from tests.helpers.api import make_api_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _signed_in(role: str, username: str | None = None) -> HttpClient:
    user = UserFactory(username=username or f"{role}-admin", role=role)
    http = HttpClient()
    http.force_login(user)
    return http


@pytest.fixture
def inventory() -> HttpClient:
    return _signed_in("inventory")


@pytest.fixture
def finance() -> HttpClient:
    return _signed_in("finance")


def form_data(response: Any) -> dict[str, Any]:
    """The change form's current values as the browser would post them back."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
    return data


def _post_change(http: HttpClient, obj: Any, **changes: Any) -> Any:
    url = reverse(f"admin:orders_{obj._meta.model_name}_change", args=[obj.pk])
    page = http.get(url)
    assert page.status_code == 200
    return http.post(url, {**form_data(page), **changes})


def _quote(shop: Any, product: Product) -> dict[str, Any]:
    response = shop.post(
        "/api/v1/charges", {"product_id": product.pk, "denomination": "100.00", "quantity": 10}
    )
    assert response.status_code == 200, response.content
    return response.json()


# --- Finding 1: vendor adapters are registry keys, never Python paths --------------


def test_inventory_user_cannot_set_a_python_path_as_vendor_adapter(inventory):
    vendor = VendorFactory()
    sys.modules.pop("this", None)

    response = _post_change(inventory, vendor, adapter="this.s")

    assert response.status_code == 200  # the form again, with an error
    errors = response.context["adminform"].form.errors
    assert "adapter" in errors
    assert "this.s" in str(errors["adapter"])
    vendor.refresh_from_db()
    assert vendor.adapter == "simulated"
    assert "this" not in sys.modules  # nothing was imported


def test_vendor_adapter_is_a_select_of_registered_adapters(inventory):
    vendor = VendorFactory()

    page = inventory.get(reverse("admin:orders_vendor_change", args=[vendor.pk]))

    html = page.content.decode()
    assert '<select name="adapter"' in html
    assert '<option value="simulated" selected>' in html
    assert 'type="text" name="adapter"' not in html


def test_vendor_change_in_the_admin_is_audited(inventory):
    vendor = VendorFactory()

    response = _post_change(inventory, vendor, name="Galactic Cards", is_active="")

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.change")
    assert event.actor_label == "user:inventory-admin"
    assert event.data["model"] == "orders.vendor"
    assert event.data["pk"] == vendor.pk
    assert event.data["changes"] == {
        "name": {"before": "Simulated vendor", "after": "Galactic Cards"},
        "is_active": {"before": True, "after": False},
    }


# --- Finding 1: repricing needs a second approver and is audited -----------------


def test_large_discount_waits_for_a_second_approver_and_the_api_keeps_the_old_price(
    inventory, finance, system_actor
):
    product = ProductFactory(denominations=["100.00"], bulk_limit=10)
    add_stock(product, "100.00", 10)
    shop = make_api_user("Price Watcher", system_actor, balance="2000.00")
    assert _quote(shop, product)["wallet_amount"] == "1000.00"

    response = _post_change(inventory, product, discount_percent="99.99")

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.discount_percent == Decimal("0")
    assert _quote(shop, product)["wallet_amount"] == "1000.00"
    change = PriceChange.objects.get(product=product)
    assert change.status == PriceChange.Status.PENDING
    assert change.changes == {"discount_percent": {"before": "0.000", "after": "99.990"}}
    requested = AuditEvent.objects.get(action="product.price_change_request")
    assert requested.actor_label == "user:inventory-admin"
    assert requested.data["changes"] == change.changes

    # The maker cannot approve (no permission), the finance user can.
    queue = reverse("admin:orders_pricechange_changelist")
    approve = {"action": "approve", "_selected_action": [change.pk]}
    inventory.post(queue, approve)
    change.refresh_from_db()
    assert change.status == PriceChange.Status.PENDING
    assert _quote(shop, product)["wallet_amount"] == "1000.00"

    done = finance.post(queue, approve, follow=True)

    assert "Approved 1 price change(s)." in done.content.decode()
    change.refresh_from_db()
    assert change.status == PriceChange.Status.APPROVED
    assert change.decided_by.username == "finance-admin"
    assert _quote(shop, product)["wallet_amount"] == "0.10"
    approved = AuditEvent.objects.get(action="product.price_change_approve")
    assert approved.actor_label == "user:finance-admin"
    assert approved.data["changes"]["discount_percent"] == {"before": "0.000", "after": "99.990"}


def test_the_maker_cannot_approve_their_own_price_change(system_actor):
    maker = _signed_in("admin", "maker-admin")
    product = ProductFactory(denominations=["100.00"])

    _post_change(maker, product, discount_percent="50")
    change = PriceChange.objects.get(product=product)
    response = maker.post(
        reverse("admin:orders_pricechange_changelist"),
        {"action": "approve", "_selected_action": [change.pk]},
        follow=True,
    )

    assert "a different user must approve it" in response.content.decode()
    change.refresh_from_db()
    assert change.status == PriceChange.Status.PENDING
    product.refresh_from_db()
    assert product.discount_percent == Decimal("0")


def test_small_price_change_is_applied_at_once_and_audited_with_before_and_after(inventory):
    product = ProductFactory(discount_percent=Decimal("2"))

    response = _post_change(inventory, product, discount_percent="3.5", fee_fixed="0.25")

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.discount_percent == Decimal("3.5")
    event = AuditEvent.objects.get(action="product.price_change")
    assert event.data["changes"] == {
        "discount_percent": {"before": "2.000", "after": "3.500"},
        "fee_fixed": {"before": "0.00", "after": "0.25"},
    }
    admin_change = AuditEvent.objects.get(action="admin.change")
    assert admin_change.data["changes"]["discount_percent"] == {
        "before": "2.000",
        "after": "3.500",
    }


def test_pending_price_change_still_saves_the_other_fields(inventory):
    product = ProductFactory(name="Old name")

    _post_change(inventory, product, name="New name", discount_percent="40")

    product.refresh_from_db()
    assert product.name == "New name"
    assert product.discount_percent == Decimal("0")
    event = AuditEvent.objects.get(action="admin.change")
    assert event.data["changes"] == {"name": {"before": "Old name", "after": "New name"}}
    assert event.data["price_change_id"] == PriceChange.objects.get().pk


def test_new_product_with_a_large_discount_waits_for_approval(inventory):
    vendor = VendorFactory()
    page = inventory.get(reverse("admin:orders_product_add"))
    data = {
        **form_data(page),
        "vendor": vendor.pk,
        "name": "Moon Cinema",
        "brand": "Moon",
        "kind": "GIFT_CARD",
        "currency": "USD",
        "denominations": '["100.00"]',
        "delivery_type": "CODE_WITH_PIN",
        "discount_percent": "99.99",
    }

    response = inventory.post(reverse("admin:orders_product_add"), data)

    assert response.status_code == 302
    product = Product.objects.get(name="Moon Cinema")
    assert product.discount_percent == Decimal("0")
    assert PriceChange.objects.get(product=product).status == PriceChange.Status.PENDING
    assert AuditEvent.objects.filter(action="admin.add", data__pk=product.pk).exists()


@pytest.mark.parametrize("bulk_limit", [1, rules.MAX_BULK_LIMIT])
def test_a_bulk_limit_up_to_the_largest_is_accepted(inventory, bulk_limit):
    product = ProductFactory(denominations=["10.00"], bulk_limit=10)

    response = _post_change(inventory, product, bulk_limit=str(bulk_limit))

    assert response.status_code == 302
    product.refresh_from_db()
    change = PriceChange.objects.get(product=product)
    if change.status == PriceChange.Status.PENDING:  # 1,000 times the largest order
        assert bulk_limit == rules.MAX_BULK_LIMIT
        assert change.changes["bulk_limit"]["after"] == rules.MAX_BULK_LIMIT
    else:
        assert product.bulk_limit == bulk_limit


@pytest.mark.parametrize("bulk_limit", ["0", str(rules.MAX_BULK_LIMIT + 1)])
def test_a_bulk_limit_outside_1_to_10000_is_a_form_error(inventory, bulk_limit):
    product = ProductFactory(bulk_limit=10)

    response = _post_change(inventory, product, bulk_limit=bulk_limit)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["bulk_limit"]
    limit = "greater than or equal to 1" if bulk_limit == "0" else "less than or equal to 10000"
    assert errors == [f"Ensure this value is {limit}."]
    product.refresh_from_db()
    assert product.bulk_limit == 10
    assert not PriceChange.objects.exists()


def test_discount_above_100_percent_is_a_form_error(inventory):
    product = ProductFactory()

    response = _post_change(inventory, product, discount_percent="150")

    assert response.status_code == 200
    assert "discount_percent" in response.context["adminform"].form.errors
    assert not PriceChange.objects.exists()


# --- Each role only what its job needs ---------------------------------------------


@pytest.mark.parametrize(
    ("role", "url_name", "expected"),
    [
        ("inventory", "admin:orders_wallet_changelist", 403),
        ("inventory", "admin:orders_walletentry_changelist", 403),
        ("inventory", "admin:orders_order_changelist", 403),
        ("inventory", "admin:orders_auditevent_changelist", 403),
        ("inventory", "admin:orders_client_changelist", 403),
        ("inventory", "admin:orders_pricechange_changelist", 200),
        ("inventory", "admin:orders_product_add", 200),
        ("inventory", "admin:orders_pricechange_add", 403),
        ("inventory", "admin:auth_user_changelist", 403),
        ("inventory", "admin:auth_group_changelist", 403),
        ("support", "admin:orders_product_add", 403),
        ("support", "admin:orders_vendor_changelist", 403),
        ("support", "admin:orders_pricechange_changelist", 403),
        ("finance", "admin:orders_product_add", 403),
        ("finance", "admin:orders_wallet_add", 403),
        ("finance", "admin:orders_pricechange_changelist", 200),
        ("admin", "admin:orders_wallet_add", 200),
        ("admin", "admin:orders_walletentry_add", 403),
        ("admin", "admin:orders_pricechange_add", 403),
    ],
)
def test_admin_pages_each_role_may_open(role, url_name, expected):
    http = _signed_in(role)

    assert http.get(reverse(url_name)).status_code == expected


@pytest.mark.parametrize("role", ["support", "finance"])
def test_roles_that_only_view_products_cannot_change_them(role):
    http = _signed_in(role)
    product = ProductFactory()
    url = reverse("admin:orders_product_change", args=[product.pk])

    page = http.get(url)
    response = http.post(url, {"name": "Hijacked", "discount_percent": "90"})

    assert page.status_code == 200
    assert 'name="discount_percent"' not in page.content.decode()
    assert response.status_code == 403
    product.refresh_from_db()
    assert product.name != "Hijacked"


def test_no_one_edits_wallets_in_the_admin(admin_client, system_actor):
    shop = make_api_user("Ledger Shop", system_actor)
    url = reverse("admin:orders_wallet_change", args=[shop.wallet.pk])

    response = admin_client.post(url, {"client": shop.client.pk, "currency": "EUR"})

    assert response.status_code == 403
    shop.wallet.refresh_from_db()
    assert shop.wallet.currency == "USD"


@pytest.mark.parametrize("role", ["inventory", "admin"])
def test_deletes_are_for_superusers_only(role):
    http = _signed_in(role)
    vendor = Vendor.objects.create(code="spare", name="Spare vendor")
    url = reverse("admin:orders_vendor_delete", args=[vendor.pk])

    response = http.post(url, {"post": "yes"})

    if role == "admin":
        assert response.status_code == 302
        assert not Vendor.objects.filter(pk=vendor.pk).exists()
        event = AuditEvent.objects.get(action="admin.delete")
        assert event.data["model"] == "orders.vendor"
        assert event.data["pk"] == vendor.pk
    else:
        assert response.status_code == 403
        assert Vendor.objects.filter(pk=vendor.pk).exists()


def test_audit_events_and_history_stay_read_only_for_a_superuser(admin_client, system_actor):
    event = audit_record(action="test.event", actor=system_actor, reason="kept")

    page = admin_client.get(reverse("admin:orders_auditevent_change", args=[event.pk]))
    delete = admin_client.post(
        reverse("admin:orders_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert 'name="reason"' not in page.content.decode()
    assert delete.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# --- Every admin change of a business object writes an AuditEvent -------------------


def test_granting_a_permission_to_a_group_in_the_admin_is_audited(admin_client):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name="inventory")
    approve = Permission.objects.get(codename="approve_price_change")
    url = reverse("admin:auth_group_change", args=[group.pk])
    page = admin_client.get(url)
    data = form_data(page)
    data["permissions"] = [*data["permissions"], approve.pk]

    response = admin_client.post(url, data)

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.change")
    assert event.data["model"] == "auth.group"
    assert approve.pk in event.data["changes"]["permissions"]["after"]
    assert approve.pk not in event.data["changes"]["permissions"]["before"]


def test_admin_actions_are_audited(admin_client, system_actor):
    shop = make_api_user("Revoked Shop", system_actor)

    admin_client.post(
        reverse("admin:orders_apicredential_changelist"),
        {"action": "revoke", "_selected_action": [shop.credential.pk]},
    )

    event = AuditEvent.objects.get(action="admin.action")
    assert event.data == {
        "model": "orders.apicredential",
        "action": "revoke",
        "pks": [shop.credential.pk],
        "count": 1,
    }


def test_admin_audit_never_holds_a_secret(admin_client, system_actor):
    from orders.models import WebhookEndpoint

    shop = make_api_user("Hook Shop", system_actor)
    endpoint = WebhookEndpoint.objects.create(
        client=shop.client,
        url="https://hooks.example.com/a",
        secret="whsec_topsecret",
        events=["order.delivered"],
    )

    response = _post_change(admin_client, endpoint, url="https://hooks.example.com/b")

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.change")
    assert event.data["changes"] == {
        "url": {"before": "https://hooks.example.com/a", "after": "https://hooks.example.com/b"}
    }
    assert "whsec_topsecret" not in str(AuditEvent.objects.values_list("data", flat=True))
    assert shop.secret not in str(AuditEvent.objects.values_list("data", flat=True))
