"""Django admin: every page opens, and no voucher secret ever reaches the HTML."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.contrib import admin
from django.urls import reverse

from orders.crypto import Keyring
from orders.enums import InventoryStatus, ItemStatus, OrderStatus, SubStatus
from orders.models import (
    ApiCredential,
    AuditEvent,
    ImportBatch,
    Order,
    Voucher,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from orders.services.audit import audit_record
from orders.services.catalog import product_update
from orders.services.clients import client_create
from orders.services.transitions import order_transition
from orders.services.wallets import wallet_debit
from tests.factories import OrderFactory, OrderItemFactory, ProductFactory, VoucherFactory
from tests.helpers.audit import seal_all

pytestmark = pytest.mark.django_db

SECRETS = {
    "card_number": "6011000990139424",
    "pin_code": "8271",
    "voucher_reference_number": "REF-77410023",
    "claim_url": "https://redeem.example.com/claim/Zq81xPfa",
}
WEBHOOK_SECRET = "whsec_9f8e7d6c5b4a"
ORDERS_MODELS = [m for m in admin.site._registry if m._meta.app_label == "orders"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_decryption():
    """The admin must never decrypt: any attempt fails the test."""
    with mock.patch.object(Keyring, "unseal", side_effect=AssertionError("admin decrypted")):
        yield


@pytest.fixture
def world(system_actor):
    """One row of every model, with a delivered voucher whose secrets we know."""
    client, wallet, issued = client_create(
        name="Acme Rewards", currency="USD", balance="500.00", actor=system_actor
    )
    product = ProductFactory(name="Amazon.com Gift Card", brand="Amazon.com")
    batch = ImportBatch.objects.create(product=product, file_name="codes.csv", file_sha256="0" * 64)
    voucher = VoucherFactory(product=product, batch=batch, **SECRETS)
    VoucherFactory(product=product, batch=batch)
    order = OrderFactory(
        client=client, product=product, wallet=wallet, credential=issued.credential
    )
    debit = wallet_debit(wallet_id=wallet.pk, amount=order.amount, actor=system_actor, order=order)
    Order.objects.filter(pk=order.pk).update(transaction=debit)
    order_transition(
        order_id=order.pk,
        status=OrderStatus.PENDING,
        sub_status=SubStatus.PROCESSING,
        actor=system_actor,
    )
    order_transition(
        order_id=order.pk,
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
        actor=system_actor,
        note="Delivered from inventory.",
    )
    OrderItemFactory(order=order, position=1, status=ItemStatus.DELIVERED, voucher=voucher)
    Voucher.objects.filter(pk=voucher.pk).update(status=InventoryStatus.DELIVERED)
    audit_record(
        action="voucher.reveal",
        actor=system_actor,
        order_id=order.pk,
        voucher_id=voucher.pk,
        reason="Customer says the code never arrived",
    )
    seal_all()  # the sealer makes the chain heads
    endpoint = WebhookEndpoint.objects.create(
        client=client,
        url="https://hooks.acme.example/starship",
        secret=WEBHOOK_SECRET,
        events=["order.delivered"],
    )
    # A payload that (wrongly) carries a code must still be shown masked.
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        order=order,
        event="order.delivered",
        payload={
            "id": order.pk,
            "vouchers": [{"card_number": SECRETS["card_number"], "pin_code": SECRETS["pin_code"]}],
        },
    )
    WebhookAttempt.objects.create(delivery=delivery, status_code=200, duration_ms=41)
    product_update(product_id=product.pk, values={"discount_percent": "1.5"}, actor=system_actor)
    return {"order": order, "voucher": voucher, "wallet": wallet, "credential": issued}


def _assert_no_secret(html: str) -> None:
    for name, plaintext in SECRETS.items():
        assert plaintext not in html, name
    assert WEBHOOK_SECRET not in html
    assert "enc:v1:" not in html


@pytest.mark.parametrize("model", ORDERS_MODELS, ids=lambda m: m._meta.model_name)
def test_every_changelist_opens_for_a_superuser_without_secrets(admin_client, world, model):
    url = reverse(f"admin:orders_{model._meta.model_name}_changelist")

    response = admin_client.get(url)

    assert response.status_code == 200
    _assert_no_secret(response.content.decode())


@pytest.mark.parametrize("model", ORDERS_MODELS, ids=lambda m: m._meta.model_name)
def test_every_change_page_opens_without_secrets(admin_client, world, model):
    obj = model._default_manager.first()
    assert obj is not None, "the world fixture covers every model"
    url = reverse(f"admin:orders_{model._meta.model_name}_change", args=[obj.pk])

    response = admin_client.get(url)

    assert response.status_code == 200
    _assert_no_secret(response.content.decode())


def test_voucher_page_shows_only_masks(admin_client, world):
    voucher = world["voucher"]

    response = admin_client.get(reverse("admin:orders_voucher_change", args=[voucher.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "•••• 9424" in html
    assert html.count("••••") >= 4  # card, PIN, reference, claim URL
    for field in SECRETS:
        assert f'name="{field}"' not in html  # no form input for any encrypted column
    assert 'name="fingerprint"' not in html


def test_saving_a_voucher_in_the_admin_keeps_its_ciphertexts(admin_client, world):
    voucher = world["voucher"]
    before = Voucher.objects.get(pk=voucher.pk)
    url = reverse("admin:orders_voucher_change", args=[voucher.pk])

    response = admin_client.post(
        url,
        {
            "expires_at_0": "2031-01-31",
            "expires_at_1": "23:59:59",
            "status_reason": "checked by support",
        },
    )

    assert response.status_code == 302
    after = Voucher.objects.get(pk=voucher.pk)
    assert after.status_reason == "checked by support"
    for field in SECRETS:
        assert getattr(after, field).ciphertext == getattr(before, field).ciphertext


def test_voucher_can_be_found_by_its_full_code_without_decrypting(admin_client, world):
    url = reverse("admin:orders_voucher_changelist")

    response = admin_client.get(url, {"q": "6011 0009 9013 9424"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [world["voucher"]]


def test_read_only_models_cannot_be_added_changed_or_deleted(admin_client, world):
    event = AuditEvent.objects.first()
    assert event is not None
    for name in ("auditevent", "walletentry", "statuschange", "order"):
        assert admin_client.get(reverse(f"admin:orders_{name}_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:orders_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    page = admin_client.get(reverse("admin:orders_auditevent_change", args=[event.pk]))
    assert 'name="reason"' not in page.content.decode()


def test_wallet_balance_is_not_editable(admin_client, world):
    wallet = world["wallet"]

    response = admin_client.get(reverse("admin:orders_wallet_change", args=[wallet.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="balance"' not in html
    assert str(Decimal("500.00") - world["order"].amount) in html


def test_credential_list_hides_the_secret_hash_and_revoke_works(admin_client, world):
    credential: ApiCredential = world["credential"].credential
    url = reverse("admin:orders_apicredential_changelist")

    listing = admin_client.get(url).content.decode()
    detail = admin_client.get(
        reverse("admin:orders_apicredential_change", args=[credential.pk])
    ).content.decode()
    response = admin_client.post(
        url, {"action": "revoke", "_selected_action": [credential.pk]}, follow=True
    )

    assert credential.secret_hash not in listing and credential.secret_hash not in detail
    assert world["credential"].secret not in listing + detail
    assert "Revoked 1 credential(s)." in response.content.decode()
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert AuditEvent.objects.filter(action="credential.revoke").count() == 1


def test_order_changelist_filters_by_status_and_searches_reference(admin_client, world):
    other = OrderFactory(reference_code="ZZ-OTHER")
    url = reverse("admin:orders_order_changelist")

    delivered = admin_client.get(url, {"status__exact": "DELIVERED"}).context["cl"].result_list
    found = admin_client.get(url, {"q": "ZZ-OTHER"}).context["cl"].result_list

    assert list(delivered) == [world["order"]]
    assert list(found) == [other]
