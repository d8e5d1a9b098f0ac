"""What placing an order costs the database: a fixed number of statements and one
commit, idempotency included, for 1 unit as for 10,000 (issue 13, items 4 and 5).

Each test counts the statements and the commits of `order_create` itself (no
HTTP): tests/test_query_counts.py pins the whole API request.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from orders import rules
from orders.enums import ItemStatus, OrderStatus, SubStatus, WalletEntryKind
from orders.models import Order, OrderItem, StatusChange, Wallet, WalletEntry
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.clients import client_create
from orders.services.fulfilment import order_fulfil_task
from orders.services.placing import Customer, PlacedOrder, order_create
from tests.factories import ProductFactory
from tests.helpers.transactions import Cost, database_cost, shape_of

# One chain: the warm-up order creates its head, as every chain has one in a
# running system, so the counted order pays the steady-state audit cost.
pytestmark = pytest.mark.usefixtures("_one_audit_chain")

AUDIT_TABLES = ("orders_auditevent", "orders_auditchainhead")
TASK_TABLE = DBTaskResult._meta.db_table

# The statements of order_create other than its audit event, in order.
OWN_STATEMENTS = [
    ("SELECT", "orders_order"),  # replay check: (client, reference_code)
    ("SELECT", "orders_product"),  # the product (and its vendor)
    ("SELECT", "orders_wallet"),  # the client's wallets
    ("INSERT", "orders_order"),  # the order, its debit's id reserved
    ("INSERT", "orders_orderitem"),  # every unit, in one INSERT ... SELECT
    ("INSERT", "orders_statuschange"),  # the timeline's first row
    ("UPDATE", "orders_wallet"),  # the debit: balance lowered only if it covers it
    ("INSERT", "orders_walletentry"),  # the ledger entry, balance_after read back
]
# Then fulfilment: a product in stock is left to the worker's stock batcher (on
# PostgreSQL a NOTIFY wakes it at commit); with the batcher off, or for a product
# sold only by a vendor, its task is queued, committed with the order.
TASK = ("INSERT", TASK_TABLE)
WAKE = ("NOTIFY", "")


@pytest.fixture
def _one_audit_chain(settings):
    settings.AUDIT_CHAINS = 1


@pytest.fixture
def buyer(system_actor):
    client, wallet, _ = client_create(
        name="Bulk Buyer", currency="USD", balance="300000.00", actor=system_actor
    )
    return client, wallet


def _place(client, product, reference_code: str, quantity: int = 1) -> PlacedOrder:
    return order_create(
        client=client,
        actor=Actor.system("test"),
        product_id=product.pk,
        denomination="25.00",
        quantity=quantity,
        reference_code=reference_code,
        customer=Customer(name="Ada", email="ada@example.com"),
    )


def _audit_cost(order: Order) -> int:
    """The statements one audit event costs inside a transaction, on a warm chain."""
    with transaction.atomic(), database_cost() as cost:
        audit_record(action="order.create", actor=Actor.system("test"), order_id=order.pk)
    return len(cost.statements)


def _own(cost: Cost) -> list[tuple[str, str]]:
    """The statements' shape without the audit event's and SQLite's BEGIN."""
    return [s for s in cost.shape(without=AUDIT_TABLES) if s[1]]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batcher", [True, False], ids=["stock-batcher", "task-per-order"])
def test_an_order_is_placed_in_ten_statements_and_one_commit(buyer, settings, batcher):
    settings.FULFILMENT_STOCK_BATCHER = batcher
    client, wallet = buyer
    product = ProductFactory(denominations=["25.00"])
    _place(client, product, "WARM-UP")

    with database_cost() as cost:
        placed = _place(client, product, "COUNTED")

    assert placed.created
    assert cost.commits == 1, cost.statements
    woken = [WAKE] if connection.vendor == "postgresql" else []  # SQLite's batcher polls
    then = woken if batcher else [TASK]
    assert [s for s in cost.shape(without=AUDIT_TABLES) if s[1] or s == WAKE] == [
        *OWN_STATEMENTS,
        *then,
    ], cost.statements
    assert _audit_cost(placed.order) == 1  # the audit event is one INSERT
    sent = [sql for sql in cost.statements if shape_of(sql)[0] != "BEGIN"]  # SQLite's
    assert len(sent) == len(OWN_STATEMENTS) + len(then) + 1 <= 10, cost.statements
    # What those statements wrote is all there, committed together.
    order = Order.objects.get(pk=placed.order.pk)
    entry = WalletEntry.objects.get(order=order, kind=WalletEntryKind.ORDER_DEBIT)
    assert order.transaction_id == entry.pk
    assert entry.balance_after == Wallet.objects.get(pk=wallet.pk).balance
    queued = DBTaskResult.objects.filter(
        task_path=order_fulfil_task.module_path, args_kwargs__args=[order.pk]
    )
    assert queued.exists() is not batcher


@pytest.mark.django_db(transaction=True)
def test_a_replay_reads_two_rows_and_commits_nothing(buyer):
    client, wallet = buyer
    product = ProductFactory(denominations=["25.00"])
    first = _place(client, product, "AGAIN", quantity=3)
    balance = Wallet.objects.get(pk=wallet.pk).balance

    with database_cost() as cost:
        again = _place(client, product, "AGAIN", quantity=3)

    assert not again.created and again.order.pk == first.order.pk
    assert cost.shape() == [("SELECT", "orders_order"), ("SELECT", "orders_orderitem")]
    assert cost.commits == 0
    assert [item.position for item in again.order.items.all()] == [1, 2, 3]
    assert Wallet.objects.get(pk=wallet.pk).balance == balance


@pytest.mark.django_db(transaction=True)
def test_ten_thousand_units_cost_the_statements_of_one(buyer):
    client, wallet = buyer
    product = ProductFactory(denominations=["25.00"], bulk_limit=rules.MAX_BULK_LIMIT)
    _place(client, product, "WARM-UP")

    with database_cost() as one:
        _place(client, product, "ONE-UNIT")
    with database_cost() as bulk:
        placed = _place(client, product, "TEN-THOUSAND", quantity=rules.MAX_BULK_LIMIT)

    assert placed.created
    assert one.commits == bulk.commits == 1
    # The same statements, one INSERT of items among them, on SQLite as well.
    assert bulk.shape() == one.shape()
    assert bulk.shape().count(("INSERT", "orders_orderitem")) == 1

    order = placed.order
    assert order.quantity == rules.MAX_BULK_LIMIT
    assert order.amount == Decimal("250000.00")
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("300000.00") - 50 - 250000
    items = OrderItem.objects.filter(order=order)
    assert items.count() == rules.MAX_BULK_LIMIT
    assert set(items.values_list("status", flat=True)) == {ItemStatus.PENDING}
    assert sorted(items.values_list("position", flat=True)) == list(
        range(1, rules.MAX_BULK_LIMIT + 1)
    )
    assert [i.position for i in order.items.all()][-1] == rules.MAX_BULK_LIMIT  # no re-read
    assert StatusChange.objects.get(order=order).to_sub_status == SubStatus.INITIAL
    assert order.status == OrderStatus.PLACED
    assert WalletEntry.objects.filter(order=order).count() == 1
