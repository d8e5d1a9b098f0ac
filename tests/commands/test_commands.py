"""Management commands: what an operator types and what they get back."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, load_command_class
from django.db import connection
from django.utils import timezone

from orders.enums import (
    ALL_API_SCOPES,
    DeliveryType,
    GiftLinkStatus,
    InventoryStatus,
    ItemStatus,
    LinkType,
    OrderStatus,
    ProductKind,
    RefundStatus,
    SubStatus,
    WalletEntryKind,
)
from orders.models import (
    ApiCredential,
    AuditEvent,
    Client,
    GiftLink,
    Order,
    OrderItem,
    Product,
    StatusChange,
    Voucher,
    Wallet,
    WalletEntry,
)
from orders.services.wallets import ledger_mismatches

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Staff logins are hashed with a deliberately slow hasher in production.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def exit_code(*args: str) -> int:
    """Run a command the way manage.py does and return its exit status."""
    command = type(load_command_class("orders", args[0]))(stdout=StringIO(), stderr=StringIO())
    # run_from_argv closes every connection when done, which would end the test's transaction.
    with mock.patch("django.core.management.base.connections.close_all"):
        try:
            command.run_from_argv(["manage.py", *args])
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0


def _counts() -> dict[str, int]:
    models = [*apps.get_app_config("orders").get_models(), get_user_model()]
    return {model._meta.label: model._default_manager.count() for model in models}


# --- create_client --------------------------------------------------------------


def test_create_client_json_prints_a_working_secret_that_is_stored_only_hashed():
    output = run("create_client", "Nova Perks", "--currency", "eur", "--balance", "1000.00",
                 "--json")  # fmt: skip

    assert len(output.strip().splitlines()) == 1
    payload = json.loads(output)
    assert set(payload) == {"client_id", "api_key", "api_secret"}
    credential = ApiCredential.objects.get(public_key=payload["api_key"])
    assert credential.client_id == payload["client_id"]
    assert payload["api_key"].startswith("sk_live_")
    assert credential.secret_matches(payload["api_secret"])
    assert not credential.secret_matches(payload["api_secret"] + "x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orders_apicredential WHERE id = %s", [credential.pk])
        row = cursor.fetchone()
    assert all(payload["api_secret"] not in str(value) for value in row)
    wallet = Wallet.objects.get(client_id=payload["client_id"])
    assert (wallet.currency, wallet.balance) == ("EUR", Decimal("1000.00"))
    assert wallet.entries.get().kind == WalletEntryKind.TOP_UP
    assert ledger_mismatches() == []


def test_create_client_without_json_prints_a_readable_summary():
    output = run("create_client", "Orbit Loyalty", "--balance", "250.00", "--mode", "test")

    credential = ApiCredential.objects.get(client__name="Orbit Loyalty")
    assert credential.public_key.startswith("sk_test_")
    assert f"API key:    {credential.public_key}" in output
    assert "Wallet:     USD 250.00" in output
    assert "shown only this once" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme", "--currency", "US"], "not a 3-letter currency code"),
        (["Acme", "--currency", "12$"], "not a 3-letter currency code"),
        (["Acme", "--balance", "ten"], "balance must be a decimal amount"),
        (["Acme", "--balance", "10.005"], "more than 2 decimal places"),
        (["Acme", "--balance", "-5.00"], "cannot be negative"),
        (["Acme", "--email", "not-an-email"], "not a valid e-mail address"),
        (["  ", "--balance", "5.00"], "needs a name"),
    ],
)
def test_create_client_bad_input_fails_clearly_and_writes_nothing(args, message):
    before = _counts()

    with pytest.raises(CommandError, match=message):
        run("create_client", *args)

    assert _counts() == before
    assert exit_code("create_client", *args) == 1


def test_create_client_refuses_a_duplicate_name_and_points_to_new_credential():
    run("create_client", "Acme", "--balance", "10.00")
    before = _counts()

    with pytest.raises(CommandError, match=r"already exists.*--new-credential"):
        run("create_client", "Acme", "--balance", "10.00")

    assert _counts() == before


def test_new_credential_for_an_existing_client():
    first = json.loads(run("create_client", "Acme", "--json"))

    second = json.loads(run("create_client", "Acme", "--new-credential", "--json"))

    assert second["client_id"] == first["client_id"]
    assert second["api_key"] != first["api_key"]
    assert ApiCredential.objects.filter(client_id=first["client_id"]).count() == 2
    assert Wallet.objects.filter(client_id=first["client_id"]).count() == 1
    with pytest.raises(CommandError, match="No client named 'Nobody'"):
        run("create_client", "Nobody", "--new-credential")


def test_create_client_sets_the_credentials_scopes_and_allowed_ips():
    output = run("create_client", "Acme", "--scopes", "orders:read, orders:write",
                 "--allowed-ips", "203.0.113.0/24,2001:DB8::/32,192.0.2.7")  # fmt: skip

    credential = ApiCredential.objects.get(client__name="Acme")
    assert credential.scopes == ["orders:write", "orders:read"]
    assert credential.allowed_networks == ["203.0.113.0/24", "2001:db8::/32", "192.0.2.7/32"]
    assert "Scopes:     orders:write orders:read" in output
    more = json.loads(run("create_client", "Acme", "--new-credential", "--scopes", "wallet:read",
                          "--json"))  # fmt: skip
    assert ApiCredential.objects.get(public_key=more["api_key"]).scopes == ["wallet:read"]


def test_create_client_gives_a_credential_every_scope_and_any_address_by_default():
    run("create_client", "Acme")

    credential = ApiCredential.objects.get(client__name="Acme")
    assert credential.scopes == list(ALL_API_SCOPES)
    assert credential.allowed_networks == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "orders:read,orders:delete"],
         r"Unknown scope orders:delete; valid: orders:write, orders:read, vouchers:read, "
         r"wallet:read, webhooks:manage"),
        (["--scopes", " , "], "names no scope; valid: orders:write"),
        (["--allowed-ips", "203.0.113.0/24,300.1.2.3"], "'300.1.2.3' is not an IP address or CIDR"),
        (["--allowed-ips", "203.0.113.7/24"], r"host bits set; did you mean 203\.0\.113\.0/24"),
    ],
)  # fmt: skip
def test_create_client_refuses_bad_scopes_and_networks_and_writes_nothing(args, message):
    before = _counts()

    with pytest.raises(CommandError, match=message):
        run("create_client", "Acme", *args)

    assert _counts() == before
    assert exit_code("create_client", "Acme", *args) == 1


# --- create_staff -----------------------------------------------------------------


@pytest.mark.parametrize("role", ["support", "finance", "inventory"])
def test_create_staff_puts_the_user_in_exactly_its_role_group(role):
    output = run("create_staff", f"{role}.lead", "--role", role, "--password", "Nebula-42-x",
                 "--email", f"{role}@example.com")  # fmt: skip

    user = get_user_model().objects.get(username=f"{role}.lead")
    assert f"Created staff user '{role}.lead' with role {role}" in output
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [role]
    assert user.check_password("Nebula-42-x")
    assert user.email == f"{role}@example.com"


def test_create_staff_admin_is_a_superuser():
    run("create_staff", "root.admin", "--role", "admin", "--password", "Nebula-42-x")

    user = get_user_model().objects.get(username="root.admin")
    assert user.is_staff and user.is_superuser
    assert not user.groups.exists()


def test_create_staff_again_updates_role_and_password():
    run("create_staff", "sam", "--role", "finance", "--password", "Nebula-42-x")

    output = run("create_staff", "sam", "--role", "support", "--password", "Quasar-77-y")

    user = get_user_model().objects.get(username="sam")
    assert "Updated staff user 'sam'" in output
    assert list(user.groups.values_list("name", flat=True)) == ["support"]
    assert user.check_password("Quasar-77-y") and not user.check_password("Nebula-42-x")
    assert get_user_model().objects.filter(username="sam").count() == 1
    # Without --password the role changes and the password stays.
    run("create_staff", "sam", "--role", "admin")
    user.refresh_from_db()
    assert user.is_superuser and user.check_password("Quasar-77-y")
    assert not user.groups.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["newbie", "--role", "support"], "--password is required"),
        (["newbie", "--role", "janitor", "--password", "Nebula-42-x"], "invalid choice"),
        (["newbie", "--role", "support", "--password", "123"], "Password refused"),
        (["bad name!", "--role", "support", "--password", "Nebula-42-x"], "valid username"),
    ],
)
def test_create_staff_bad_input_fails_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_staff", *args)

    assert not get_user_model().objects.exists()


# --- check_ledger ---------------------------------------------------------------


def test_check_ledger_ok_and_then_catches_a_hand_edited_balance():
    run("create_client", "Acme", "--balance", "100.00")
    run("create_client", "Blue", "--currency", "EUR", "--balance", "50.00")
    assert "ledger OK: 2 wallets" in run("check_ledger")
    wallet = Wallet.objects.get(client__name="Blue")

    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_wallet SET balance = %s WHERE id = %s", ["75.00", wallet.pk])

    out = StringIO()
    with pytest.raises(CommandError, match="1 wallet"):
        call_command("check_ledger", stdout=out)
    assert (
        f"MISMATCH wallet {wallet.pk} (Blue, EUR): balance 75.00, sum of entries 50.00"
        in out.getvalue()
    )
    assert exit_code("check_ledger") == 1


# --- seed_demo --------------------------------------------------------------------


def test_seed_demo_builds_a_consistent_world_and_a_second_run_changes_nothing():
    first = run("seed_demo")
    counts = _counts()
    second = run("seed_demo")

    assert _counts() == counts
    # Secrets are printed only when the credential is created.
    assert first.count("API secret:") == 3 and "API secret:" not in second
    assert second.count("--new-credential") == 3
    for login in ("support", "finance", "inventory", "admin"):
        assert login in first
        assert get_user_model().objects.get(username=login).check_password("starship-demo")
    assert "ledger OK: 3 wallets" in run("check_ledger")
    audit = run("check_audit_chain")
    assert "audit chain OK" in audit
    assert "seal backlog: none" in audit  # seed_demo ends with every event sealed

    # The world: three funded clients, a catalog of every kind, ~300 orders.
    assert set(Client.objects.values_list("name", flat=True)) >= {
        "Acme Rewards",
        "Blue Bank",
        "Crown Perks",
    }
    assert set(Wallet.objects.values_list("currency", flat=True)) == {"USD", "EUR", "GBP"}
    products = Product.objects.all()
    assert products.count() >= 12
    assert set(products.values_list("kind", flat=True)) == set(ProductKind.values)
    assert set(products.values_list("delivery_type", flat=True)) == set(DeliveryType.values)
    assert products.filter(min_denomination__isnull=False).exists()
    assert products.exclude(denominations=[]).exists()
    assert products.filter(vouchers__isnull=True).exists()  # some sell only via the vendor
    soon = timezone.now() + timedelta(days=30)
    available = Voucher.objects.filter(status=InventoryStatus.AVAILABLE)
    assert available.filter(expires_at__lt=soon).exists()

    orders = Order.objects.all()
    assert 250 <= orders.count() <= 400
    assert set(orders.values_list("status", flat=True)) == set(OrderStatus.values)
    pending_subs = set(
        orders.filter(status=OrderStatus.PENDING).values_list("sub_status", flat=True)
    )
    assert len(pending_subs) >= 3
    assert orders.filter(refund_status=RefundStatus.NOT_REFUNDED).exists()
    refunded = orders.filter(refund_status=RefundStatus.REFUNDED)
    assert refunded.exists()
    assert not refunded.filter(refund_entry__isnull=True).exists()
    assert set(refunded.values_list("sub_status", flat=True)) <= {
        SubStatus.REFUNDED,
        SubStatus.RECONCILED,
    }
    oldest = orders.order_by("placed_at").first()
    assert oldest is not None and oldest.placed_at < timezone.now() - timedelta(days=25)
    # Every order paid by its own debit, every unit an item, every step a timeline row.
    assert not orders.filter(transaction__isnull=True).exists()
    assert WalletEntry.objects.filter(kind=WalletEntryKind.ORDER_DEBIT).count() == orders.count()
    assert sum(orders.values_list("quantity", flat=True)) == OrderItem.objects.count()
    assert StatusChange.objects.count() > orders.count() * 2
    assert not StatusChange.objects.filter(created_at__gt=timezone.now()).exists()
    delivered_codes = OrderItem.objects.filter(status=ItemStatus.DELIVERED, voucher__isnull=False)
    assert delivered_codes.exists()
    assert not delivered_codes.exclude(voucher__status=InventoryStatus.DELIVERED).exists()
    # Nothing printed is a voucher secret (codes only exist encrypted).
    assert "enc:v1:" not in first
    # LINK orders of a PUBLIC and of a PROTECTED product, claimed and not yet.
    for link_type in (LinkType.PUBLIC, LinkType.PROTECTED):
        links = GiftLink.objects.filter(link_type=link_type)
        assert set(links.values_list("status", flat=True)) >= {
            GiftLinkStatus.UNCLAIMED,
            GiftLinkStatus.CLAIMED,
        }, link_type
        assert not links.exclude(order__product__link_type=link_type).exists()

    # A hand-broken balance is caught.
    wallet = Wallet.objects.get(client__name="Crown Perks")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE orders_wallet SET balance = balance + 1 WHERE id = %s", [wallet.pk])
    with pytest.raises(CommandError, match="ledger broken"):
        run("check_ledger")
    assert exit_code("check_ledger") == 1


def test_audit_events_written_by_commands_are_never_secrets():
    payload = json.loads(run("create_client", "Acme", "--json"))

    for event in AuditEvent.objects.all():
        assert payload["api_secret"] not in json.dumps(event.data) + event.reason
