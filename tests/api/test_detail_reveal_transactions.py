"""The reveal services open no savepoint of their own: a caller inside its own
transaction that catches their refusal (a domain error) finds that transaction
intact, and nothing of the refused reveal was written."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from orders.crypto import unseal
from orders.enums import InventoryStatus, OrderStatus, SubStatus
from orders.errors import DecryptionFailed, DomainError, NotFound, RateLimited
from orders.models import AuditEvent, Voucher
from orders.services.actors import Actor
from orders.services.reveal import order_detail_reveal, voucher_reveal
from tests.factories import OrderFactory, OrderItemFactory, UserFactory, VoucherFactory
from tests.helpers.orders import delivered_order

pytestmark = pytest.mark.django_db


def _refused(call, error: type[DomainError]) -> list[str]:
    """Run `call` inside the caller's transaction, catch `error`; the SQL it sent."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with pytest.raises(error):
            call()
        # The caller carries on in its transaction.
        assert not transaction.get_rollback()
        assert Voucher.objects.exists()
    return [q["sql"] for q in queries.captured_queries]


def _savepoints(sql: list[str]) -> list[str]:
    return [s for s in sql if "SAVEPOINT" in s]


def test_a_refused_staff_reveal_leaves_the_callers_transaction_intact(system_actor):
    order = OrderFactory(status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING)
    allocated = VoucherFactory(product=order.product, status=InventoryStatus.ALLOCATED)
    OrderItemFactory(order=order, position=1, voucher=allocated)
    agent = Actor.for_user(UserFactory(role="support"))

    not_revealable = _refused(
        lambda: voucher_reveal(voucher_id=allocated.pk, actor=agent, reason="x"), DomainError
    )
    missing = _refused(
        lambda: voucher_reveal(voucher_id=allocated.pk + 1000, actor=agent, reason="x"), NotFound
    )

    assert _savepoints(not_revealable) == _savepoints(missing) == []
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_a_reveal_over_the_hourly_limit_leaves_the_callers_transaction_intact(settings):
    settings.REVEAL_RATE_PER_HOUR = 0
    voucher = VoucherFactory(status=InventoryStatus.DELIVERED)
    agent = Actor.for_user(UserFactory(role="support"))

    sql = _refused(
        lambda: voucher_reveal(voucher_id=voucher.pk, actor=agent, reason="x"), RateLimited
    )

    assert _savepoints(sql) == []


def test_an_api_read_that_fails_to_decrypt_leaves_the_callers_transaction_intact(shop):
    order = delivered_order(shop.client, 2)
    voucher = Voucher.objects.get(order_item__order=order, order_item__position=2)
    stored = voucher.card_number.ciphertext
    assert unseal(voucher.card_number)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_voucher SET card_number = %s WHERE id = %s",
            [stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB"), voucher.pk],
        )
    actor = Actor.for_credential(shop.credential)

    sql = _refused(
        lambda: order_detail_reveal(client_id=shop.client.pk, order_id=order.pk, actor=actor),
        DecryptionFailed,
    )

    assert _savepoints(sql) == []
    # Nothing was handed out, so nothing was audited.
    assert not AuditEvent.objects.filter(action="voucher.read_api").exists()
