"""Expired inventory is never allocated and is blocked by the sweep, audited per batch."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from orders.models import AuditEvent, Voucher
from orders.services.actors import Actor
from orders.services.expiry import vouchers_expire
from orders.services.fulfilment import order_fulfil
from tests.factories import expiring_in, stock

pytestmark = pytest.mark.django_db


def test_expired_vouchers_are_blocked_in_audited_batches(product):
    expired = stock(product, 5, expires_at=expiring_in(-2))
    fresh = stock(product, 2, expires_at=expiring_in(10))

    blocked = vouchers_expire(actor=Actor.system("test"), batch_size=2)

    assert blocked == 5
    for voucher in Voucher.objects.filter(pk__in=[v.pk for v in expired]):
        assert (voucher.status, voucher.status_reason) == ("BLOCKED", "expired")
    assert set(
        Voucher.objects.filter(pk__in=[v.pk for v in fresh]).values_list("status", flat=True)
    ) == {"AVAILABLE"}
    batches = AuditEvent.objects.filter(action="voucher.expire_batch")
    assert sorted(e.data["count"] for e in batches) == [1, 2, 2]
    assert vouchers_expire(actor=Actor.system("test")) == 0  # nothing left to do


def test_expire_vouchers_command_reports_what_it_blocked(product, capsys):
    stock(product, 3, expires_at=expiring_in(-1))
    call_command("expire_vouchers")
    assert "blocked 3 expired voucher(s)" in capsys.readouterr().out


def test_an_order_never_gets_an_expired_voucher(buyer, product):
    expired = stock(product, 1, expires_at=expiring_in(-1))[0]

    order = order_fulfil(order_id=buyer.place(product, "EXP-1").pk)

    assert order.status == "DELIVERED"
    voucher = order.items.get().voucher
    assert voucher is not None and voucher.source == "VENDOR"
    assert Voucher.objects.get(pk=expired.pk).status == "AVAILABLE"
