"""The dashboard on a read replica: lists, the overview and the CSV exports read it;
detail pages, actions, sign-in, sessions and users read and write the primary.

The "replica" alias is a mirror of the test database (tests/settings.py), so the
tests are transactional (the replica's connection sees what the primary
committed) and sign in as a superuser (a transactional test has no role groups).
"""

from __future__ import annotations

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.test import Client
from django.urls import reverse

from orders.enums import OrderStatus, RefundStatus, SubStatus
from orders.models import AuditEvent
from orders.services.actors import Actor
from orders.services.wallets import wallet_top_up
from tests.factories import (
    ImportBatchFactory,
    OrderFactory,
    UserFactory,
    VoucherFactory,
    WalletCreditRequestFactory,
    WalletFactory,
    refundable_order,
)
from tests.helpers.dashboard import CARD_NUMBER, client_for
from tests.helpers.replica import REPLICA, orders_tables, queries

pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])

# Pages whose reads go to the replica: the lists and the overview.
REPLICA_PAGES = [
    "overview",
    "order_list",
    "audit_log",
    "inventory_stock",
    "inventory_vouchers",
    "inventory_batches",
    "refund_queue",
    "wallet_list",
    "credit_queue",
]
# Tables only the primary may be asked for: who is signed in, and their session.
PRIMARY_ONLY = {"auth_user", "auth_group", "auth_permission", "django_session"}


@pytest.fixture
def replica_on(settings):
    settings.DATABASE_REPLICA_ALIAS = REPLICA


@pytest.fixture
def staff(db):
    return UserFactory(username="replica-admin", role="admin")


@pytest.fixture
def staff_client(staff) -> Client:
    return client_for(staff)


@pytest.fixture
def business(db):
    """Something for every page to list: orders, a refund, stock, a batch, a wallet."""
    delivered = OrderFactory(
        reference_code="REPLICA-DELIVERED",
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
    )
    refund = refundable_order(amount="40.00")
    VoucherFactory(product=delivered.product, batch=ImportBatchFactory(product=delivered.product))
    wallet = WalletFactory()
    wallet_top_up(wallet_id=wallet.pk, amount="5.00", actor=Actor.system("test"), note="Opening")
    WalletCreditRequestFactory(wallet=wallet)
    return {"delivered": delivered, "refund": refund, "wallet": wallet}


def _csv(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize("name", REPLICA_PAGES)
def test_list_pages_and_the_overview_read_from_the_replica(
    replica_on, staff_client, business, name, htmx
):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    with queries() as seen:
        response = staff_client.get(reverse(f"dashboard:{name}"), **headers)
    assert response.status_code == 200
    assert orders_tables(seen.read_on_replica()), "the page read nothing from the replica"
    assert orders_tables(seen.read_on_primary()) == set()
    assert not seen.read_on_replica() & PRIMARY_ONLY
    assert orders_tables(seen.written_on_primary()) == set()


def test_the_order_list_shows_what_the_replica_holds(replica_on, staff_client, business):
    with queries() as seen:
        response = staff_client.get(reverse("dashboard:order_list"), {"q": "REPLICA-DELIVERED"})
    assert "REPLICA-DELIVERED" in response.content.decode()
    assert "orders_order" in seen.read_on_replica()


def test_csv_exports_stream_from_the_replica(replica_on, staff_client, business):
    wallet = business["wallet"]
    with queries() as seen:
        orders = _csv(staff_client.get(reverse("dashboard:export_orders")))
        refunds = _csv(staff_client.get(reverse("dashboard:export_refunds")))
        ledger = _csv(staff_client.get(reverse("dashboard:export_ledger", args=[wallet.pk])))
    assert "REPLICA-DELIVERED" in orders
    assert business["refund"].reference_code in refunds
    assert "Opening" in ledger and "5.00" in ledger
    assert {"orders_order", "orders_wallet", "orders_walletentry"} <= seen.read_on_replica()
    assert orders_tables(seen.read_on_primary()) == set()
    assert orders_tables(seen.written_on_primary()) == set()


def test_the_order_detail_reads_the_primary_only(replica_on, staff_client, business):
    order = business["delivered"]
    with queries() as seen:
        detail = staff_client.get(reverse("dashboard:order_detail", args=[order.pk]))
        row = staff_client.get(reverse("dashboard:order_row", args=[order.pk]))
        wallet = staff_client.get(reverse("dashboard:wallet_detail", args=[business["wallet"].pk]))
    assert detail.status_code == row.status_code == wallet.status_code == 200
    assert "REPLICA-DELIVERED" in detail.content.decode()
    assert "orders_order" in seen.read_on_primary()
    assert seen.replica_statements == []


def test_a_voucher_reveal_reads_and_writes_the_primary_only(replica_on, staff_client, staff):
    voucher = VoucherFactory(card_number=CARD_NUMBER, card_last4=CARD_NUMBER[-4:])
    order = OrderFactory(
        product=voucher.product,
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
    )
    order.items.create(position=1, voucher=voucher, status="DELIVERED")
    voucher.status = "DELIVERED"
    voucher.save(update_fields=["status", "updated_at"])
    with queries() as seen:
        response = staff_client.post(
            reverse("dashboard:voucher_reveal", args=[voucher.pk]),
            {"reason": "not_received", "note": "ticket 9"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    assert CARD_NUMBER in response.content.decode()
    assert "orders_auditevent" in seen.written_on_primary()
    assert seen.replica_statements == []
    assert AuditEvent.objects.filter(
        action="voucher.reveal", voucher_id=voucher.pk, actor_user=staff
    ).exists()


def test_sign_in_and_the_session_stay_on_the_primary(replica_on, staff, business):
    browser = Client(HTTP_USER_AGENT="pytest-browser/1.0", REMOTE_ADDR="10.1.2.3")
    with queries() as seen:
        signed_in = browser.post(
            reverse("login"), {"username": staff.username, "password": "correct-horse-battery"}
        )
    assert signed_in.status_code == 302
    assert "auth_user" in seen.read_on_primary()
    assert seen.replica_statements == []

    with queries() as seen:
        listed = browser.get(reverse("dashboard:order_list"))
    assert listed.status_code == 200
    assert "orders_order" in seen.read_on_replica()
    assert not seen.read_on_replica() & PRIMARY_ONLY


def test_a_decision_on_the_refund_queue_reads_and_writes_the_primary(
    replica_on, staff_client, business
):
    refund = business["refund"]
    with queries() as seen:
        response = staff_client.post(
            reverse("dashboard:refund_decide"),
            {"order": [refund.pk], "decision": "APPROVE", "note": ""},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    assert f"Order {refund.pk}: refunded 40.00 USD" in response.content.decode()
    assert "orders_order" in seen.written_on_primary()
    assert seen.replica_statements == []  # the queue shown after it is read on the primary too
    refund.refresh_from_db()
    assert refund.refund_status == RefundStatus.REFUNDED


def _refused() -> None:
    raise OperationalError("connection refused")


def test_an_unreachable_replica_fails_its_pages_as_an_unreachable_primary_would(
    replica_on, staff, business, monkeypatch
):
    browser = client_for(staff)
    browser.raise_request_exception = False

    def status_while_down(alias: str, url: str) -> int:
        with monkeypatch.context() as patch:
            patch.setattr(connections[alias], "ensure_connection", _refused)
            return browser.get(url).status_code

    order_list = reverse("dashboard:order_list")
    primary_down = status_while_down(DEFAULT_DB_ALIAS, order_list)
    assert status_while_down(REPLICA, order_list) == primary_down >= 500
    order = business["delivered"]
    detail = reverse("dashboard:order_detail", args=[order.pk])
    assert status_while_down(REPLICA, detail) == 200
    # A download has sent its headers and CSV header row when its first read fails.
    with monkeypatch.context() as patch:
        patch.setattr(connections[REPLICA], "ensure_connection", _refused)
        export = browser.get(reverse("dashboard:export_orders"))
        with pytest.raises(OperationalError):
            _csv(export)


@pytest.mark.parametrize("name", [*REPLICA_PAGES, "export_orders", "export_refunds"])
def test_without_a_replica_every_page_reads_the_primary(staff_client, business, name):
    with queries() as seen:
        response = staff_client.get(reverse(f"dashboard:{name}"))
        if response.streaming:
            _csv(response)
    assert response.status_code == 200
    assert orders_tables(seen.read_on_primary())
    assert seen.replica_statements == []
