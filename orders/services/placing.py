"""Placing an order: validate, debit the wallet, record the order, enqueue fulfilment.

A new order costs ten statements and one commit, whatever its quantity: the
replay check, the product, the client's wallets (read before the transaction),
then inside it the order row (its debit's id reserved in the same INSERT), all
its items in one INSERT ... SELECT, the timeline row, the debit (a conditional
UPDATE of the balance and the ledger entry), the audit event (one INSERT) and
the fulfilment task, which commits with the order when the queue is a table
of this database; an order the worker's stock batcher takes (`in_stock_batch`)
has no task, its NOTIFY wakes the batcher at commit instead. The wallet's row
lock is taken late, so it is held only over the last three INSERTs and the
commit.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import prefetch_related_objects

from orders import rules
from orders.enums import (
    DeliveryMethod,
    ItemStatus,
    LinkType,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    RechargeStatus,
    SubStatus,
)
from orders.errors import Conflict, ValidationFailed
from orders.models import ApiCredential, Client, Order, OrderItem, StatusChange
from orders.selectors.prepared import Prepared, columns, statement_cursor
from orders.services.actors import Actor
from orders.services.audit import AuditEntry, audit_records
from orders.services.fulfilment import in_stock_batch, order_fulfil_task
from orders.services.pricing import Price, order_price
from orders.services.wallets import NextEntryId, wallet_debit
from orders.tasks import enqueue_with_transaction, ready_orders_wake

PHONE_RE = re.compile(r"^\+?[0-9]{6,15}$")
MAX_CANONICAL_AMOUNT = Decimal(10) ** 15


@dataclass(frozen=True)
class Customer:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class PlacedOrder:
    """The order with its items loaded (`order.items.all()` reads no more rows)."""

    order: Order
    created: bool  # False when the same request was replayed


def _clean_customer(customer: Customer) -> Customer:
    name, email, phone = customer.name.strip(), customer.email.strip(), customer.phone.strip()
    if len(name) > 200:
        raise ValidationFailed(
            "customer.name is longer than 200 characters.", field="customer.name"
        )
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationFailed(
                "customer.email is not a valid e-mail address.", field="customer.email"
            ) from None
    if phone and not PHONE_RE.match(phone.replace(" ", "")):
        raise ValidationFailed(
            "customer.phone must be 6-15 digits, optionally starting with +.",
            field="customer.phone",
        )
    return Customer(name=name, email=email.lower(), phone=phone.replace(" ", ""))


def _request_hash(**fields: object) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _amount_text(value: object) -> str:
    """One text per amount: 20, "20" and "20.00" are the same denomination."""
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
            if amount.is_finite() and abs(amount) < MAX_CANONICAL_AMOUNT:
                return rules.money_text(amount)
        except InvalidOperation:
            pass
    return str(value)


# Every order asks first whether it is a replay: one read compiled once.
_BY_REFERENCE = Prepared(
    lambda client_id, reference_code: Order.objects.filter(
        client_id=client_id, reference_code=reference_code
    ).values_list(*columns(Order)),
    "client_id",
    "reference_code",
)


def _replay(
    *, client: Client, reference_code: str, request_hashes: Collection[str]
) -> PlacedOrder | None:
    found = _BY_REFERENCE.instances(Order, client_id=client.pk, reference_code=reference_code)
    if not found:
        return None
    existing = found[0]  # (client, reference_code) is unique
    if existing.request_hash not in request_hashes:
        raise Conflict(
            f"reference_code {reference_code!r} was already used for a different order "
            f"(order {existing.pk}); use a new reference_code for a new order.",
            order_id=existing.pk,
        )
    prefetch_related_objects([existing], "items")  # a second query only for a replay
    return PlacedOrder(order=existing, created=False)


def order_create(
    *,
    client: Client,
    actor: Actor,
    product_id: object,
    denomination: object,
    quantity: object,
    reference_code: str,
    customer: Customer | None = None,
    payment_method: object = PaymentMethod.WALLET,
    recipient_phone: str = "",
    wallet_currency: str | None = None,
    credential: ApiCredential | None = None,
    delivery_method: object = DeliveryMethod.CODE,
) -> PlacedOrder:
    """Place an order exactly once per (client, reference_code).

    The same request again returns the same order and moves no money; a
    different request with a used reference_code raises Conflict. The debit,
    the order row and (with the database queue) its fulfilment task commit
    together, in one commit. `delivery_method` LINK delivers each unit as a
    gift link (not for mobile top-ups, which have no code).
    """
    reference_code = (reference_code or "").strip()
    if not rules.REFERENCE_RE.match(reference_code):
        raise ValidationFailed(
            "reference_code is required: 1-100 characters of letters, digits and . _ : - /",
            field="reference_code",
        )
    method = PaymentMethod.parse(payment_method, field="payment_method")
    delivery = DeliveryMethod.parse(delivery_method, field="delivery_method")
    buyer = _clean_customer(customer or Customer())
    phone = (recipient_phone or "").replace(" ", "").strip()
    # A replay is the same request when the values are equal, however they are
    # written (enums and currencies are already in canonical case here).
    request_fields = {
        "product_id": str(product_id),
        "quantity": str(quantity),
        "customer": [buyer.name, buyer.email, buyer.phone],
        "payment_method": str(method),
        "recipient_phone": phone,
        "wallet_currency": (wallet_currency or "").upper(),
    }
    if delivery != DeliveryMethod.CODE:
        # Only when not the default: a CODE request hashes as it did before links.
        request_fields["delivery_method"] = str(delivery)
    request_hash = _request_hash(**request_fields, denomination=_amount_text(denomination))
    # Orders placed before amounts were canonical hashed the denomination as sent.
    request_hashes = {request_hash, _request_hash(**request_fields, denomination=str(denomination))}
    replay = _replay(client=client, reference_code=reference_code, request_hashes=request_hashes)
    if replay is not None:
        return replay

    quote = order_price(
        client=client,
        product_id=product_id,
        denomination=denomination,
        quantity=quantity,
        wallet_currency=wallet_currency,
    )
    if quote.product.kind == ProductKind.MOBILE_TOPUP:
        if not PHONE_RE.match(phone):
            raise ValidationFailed(
                "recipient_phone is required for mobile top-ups: 6-15 digits, optionally with +.",
                field="recipient_phone",
            )
        if delivery == DeliveryMethod.LINK:
            raise ValidationFailed(
                "delivery_method LINK is for vouchers; a mobile top-up has no code to link.",
                field="delivery_method",
            )
    elif phone:
        raise ValidationFailed(
            "recipient_phone is only for mobile top-up products.", field="recipient_phone"
        )
    if (
        delivery == DeliveryMethod.LINK
        and quote.product.link_type == LinkType.PROTECTED
        and not buyer.email
    ):
        # A PROTECTED link opens with a one-time code e-mailed to the customer:
        # without an address nobody could ever open it.
        raise ValidationFailed(
            "customer.email is required for delivery_method LINK of this product: its "
            "links open with a one-time code e-mailed to the customer.",
            field="customer.email",
        )
    if quote.wallet is None:
        raise ValidationFailed(
            f"You have no wallet that can pay in {quote.currency}.", field="wallet_currency"
        )
    try:
        order = _record(
            client=client,
            credential=credential,
            actor=actor,
            quote=quote,
            reference_code=reference_code,
            request_hash=request_hash,
            customer=buyer,
            method=method,
            recipient_phone=phone,
            delivery_method=delivery,
        )
    except IntegrityError:
        # A concurrent identical request won the unique (client, reference_code)
        # race; our transaction (debit included) rolled back.
        replay = _replay(
            client=client, reference_code=reference_code, request_hashes=request_hashes
        )
        if replay is None:
            raise
        return replay
    return PlacedOrder(order=order, created=True)


def _items_insert(unit: OrderItem, *, quantity: int) -> list[OrderItem]:
    """Copies of `unit` at positions 1..quantity, in one INSERT ... SELECT.

    The database makes the rows from a counter, so a 10,000-unit order costs the
    one statement of a 1-unit order with no parameter per unit. bulk_create would
    send 9 parameters per unit (in batches on SQLite) and spends several times as
    long building the objects and the SQL. The columns and values are the
    model's own (defaults and auto_now as a save would set them); RETURNING
    gives each row's id.
    """
    meta = OrderItem._meta
    quote = connection.ops.quote_name
    names, columns, values, params = [], {}, [], []
    for field in meta.concrete_fields:
        assert field.column is not None
        names.append(field.attname)
        columns[field.attname] = quote(field.column)
        if field.primary_key:
            continue
        if field.attname == "position":
            values.append("unit.n")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(unit, add=True), connection))
    pk = meta.pk.attname
    units = "WITH RECURSIVE unit(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM unit WHERE n < %s)"
    table, returning = quote(meta.db_table), f"{columns[pk]}, {columns['position']}"
    inserted = ", ".join(column for name, column in columns.items() if name != pk)
    # Only the model's quoted names go into the text; every value is a parameter.
    insert = f"INSERT INTO {table} ({inserted}) SELECT {', '.join(values)}"
    sql = f"{units} {insert} FROM unit RETURNING {returning}"
    with statement_cursor(connection) as cursor:  # prepared once per connection
        cursor.execute(sql, [quantity, *params])
        rows = sorted(cursor.fetchall(), key=lambda row: row[1])
    # Made as a query's rows are (from_db with every column: the fast way).
    template = [getattr(unit, name) for name in names]
    at_pk, at_position, alias = names.index(pk), names.index("position"), connection.alias
    items = []
    for item_id, item_position in rows:
        row = list(template)
        row[at_pk], row[at_position] = item_id, item_position
        items.append(OrderItem.from_db(alias, names, row))
    return items


def _with_items(order: Order, items: list[OrderItem]) -> Order:
    """Give `order` the items just inserted, as prefetch_related would have loaded them."""
    # The attributes Django's prefetch_related_objects() sets.
    loaded = order.items.all()
    loaded._result_cache = items
    loaded._prefetch_done = True  # type: ignore[attr-defined]
    order._prefetched_objects_cache = {"items": loaded}  # type: ignore[attr-defined]
    return order


@transaction.atomic
def _record(
    *,
    client: Client,
    credential: ApiCredential | None,
    actor: Actor,
    quote: Price,
    reference_code: str,
    request_hash: str,
    customer: Customer,
    method: PaymentMethod,
    recipient_phone: str,
    delivery_method: DeliveryMethod,
) -> Order:
    product = quote.product
    assert quote.wallet is not None
    # The first write: a concurrent identical request waits here, on the unique
    # (client, reference_code), and fails once this one commits, before it has
    # touched any money.
    order = Order(
        client=client,
        credential=credential,
        product=product,
        reference_code=reference_code,
        request_hash=request_hash,
        transaction_id=NextEntryId(),  # the debit below takes this id
        product_name=product.name,
        product_brand=product.brand,
        product_kind=product.kind,
        delivery_type=product.delivery_type,
        delivery_method=delivery_method,
        currency=quote.currency,
        denomination=quote.denomination,
        quantity=quote.quantity,
        face_value=quote.face_value,
        discount=quote.discount,
        fees=quote.fees,
        taxes=quote.taxes,
        amount=quote.total,
        wallet=quote.wallet,
        wallet_currency=quote.wallet_currency,
        exchange_rate=quote.exchange_rate,
        wallet_amount=quote.wallet_amount,
        payment_method=method,
        customer_name=customer.name,
        customer_email=customer.email,
        customer_phone=customer.phone,
        recipient_phone=recipient_phone,
    )
    order.save(force_insert=True)  # RETURNING the id and the reserved transaction_id
    is_topup = product.kind == ProductKind.MOBILE_TOPUP
    items = _items_insert(
        OrderItem(
            order=order,
            position=0,
            status=ItemStatus.PENDING,
            recharge_status=RechargeStatus.PENDING if is_topup else "",
        ),
        quantity=quote.quantity,
    )
    StatusChange.objects.create(
        order=order,
        to_status=OrderStatus.PLACED,
        to_sub_status=SubStatus.INITIAL,
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        note=f"Placed; {quote.wallet_amount} {quote.wallet_currency} debited",
    )
    # Late: the wallet's row lock is held from here to the commit only, over three
    # INSERTs. The audit event comes after it, as in every other payment, so no
    # two transactions take the wallet and an audit chain in opposite orders.
    wallet_debit(
        wallet_id=quote.wallet.pk,
        amount=quote.wallet_amount,
        actor=actor,
        order=order,
        note=f"Order {order.pk} ({reference_code})",
        entry_id=order.transaction_id,
    )
    audit_records(  # one INSERT and no model instance, as the API's audited read
        [
            AuditEntry(
                action="order.create",
                actor=actor,
                order_id=order.pk,
                data={"reference_code": reference_code, "amount": str(order.amount)},
            )
        ]
    )
    if in_stock_batch(product_kind=product.kind, credential=credential):
        ready_orders_wake()  # the worker's stock batcher delivers it
    else:
        enqueue_with_transaction(order_fulfil_task, order.pk)
    return _with_items(order, items)
