"""Fixtures for the dashboard tests: one user per role and a delivered order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.enums import InventoryStatus, ItemStatus, OrderStatus, SubStatus
from tests.factories import (
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    UserFactory,
    VoucherFactory,
)
from tests.helpers.dashboard import CARD_NUMBER, PIN, REFERENCE, client_for

ROLES = ["support", "finance", "inventory", "admin"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The default PBKDF2 work factor makes every test user cost seconds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db):
    return {role: UserFactory(username=f"{role}-user", role=role) for role in ROLES}


@pytest.fixture
def as_role(users):
    def make(role: str | None) -> Client:
        return client_for(users[role] if role else None)

    return make


@pytest.fixture
def support_client(as_role) -> Client:
    return as_role("support")


@pytest.fixture
def delivered_order(db):
    """A delivered order with one delivered voucher (card, PIN, reference)."""
    product = ProductFactory(name="Nebula Books")
    voucher = VoucherFactory(
        product=product,
        card_number=CARD_NUMBER,
        pin_code=PIN,
        card_last4=CARD_NUMBER[-4:],
        voucher_reference_number=REFERENCE,
        status=InventoryStatus.DELIVERED,
        expires_at=timezone.now() + timedelta(days=10),
    )
    order = OrderFactory(
        product=product,
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
        delivered_at=timezone.now(),
        customer_email="grace@example.com",
        customer_phone="+15550100",
    )
    OrderItemFactory(order=order, position=1, voucher=voucher, status=ItemStatus.DELIVERED)
    return order, voucher


@pytest.fixture
def placed_order(db, system_actor):
    """A real order, placed and paid through the services, not yet fulfilled."""
    from orders.services.clients import client_create
    from orders.services.placing import Customer, order_create

    client, _wallet, _issued = client_create(
        name="Orbital Rewards", currency="USD", balance="500.00", actor=system_actor
    )
    product = ProductFactory(name="Pulsar Games")
    placed = order_create(
        client=client,
        actor=system_actor,
        product_id=product.pk,
        denomination="25.00",
        quantity=1,
        reference_code="DASH-PLACED-1",
        customer=Customer(name="Ada", email="ada@example.com"),
    )
    return placed.order
