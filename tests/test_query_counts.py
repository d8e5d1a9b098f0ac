"""Query counts: no dashboard page and no API endpoint costs more queries when it
shows more rows (no N+1).

Every case seeds N rows (or N children of one object), makes the request once to
warm per-process caches, counts the queries of the same request, adds 3N more
rows and counts again: the two counts must be equal, the response must succeed
and every seeded row (a "marker": a reference code, a note, a row id) must be in
it, so the growth is something a user sees. Endpoints without rows (token,
create, charges) are pinned to an exact count while the database grows.

The CSV exports are streamed; their bodies are read inside the count. They read
rows with `.iterator(chunk_size=2000)`: one query, its rows fetched 2,000 at a time
from the same cursor, so the count is constant, not one per row or per chunk.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import HttpResponse
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.enums import (
    DeliveryEmailStatus,
    ImportBatchStatus,
    InventoryStatus,
    ItemStatus,
    OrderStatus,
    RefundStatus,
    SubStatus,
)
from orders.models import (
    ApiErrorRecord,
    DeliveryEmail,
    ImportBatch,
    Order,
    OrderItem,
    RefundReview,
    StatusChange,
    Voucher,
    WalletEntry,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.clients import credential_issue
from orders.services.placing import Customer, order_create
from orders.services.wallets import wallet_top_up
from tests.factories import (
    ClientFactory,
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    UserFactory,
    VoucherFactory,
    WalletFactory,
    deliver_order,
    delivered_webhook,
)
from tests.helpers.api import ApiUser, make_api_user
from tests.helpers.dashboard import client_for

pytestmark = pytest.mark.django_db

N = 4  # rows seeded; every page size (25, 50) holds N + GROW of them
GROW = 3 * N
ROLES = ["support", "finance", "inventory", "admin"]
CSV_HEADER = "card_number,pin_code,voucher_reference_number,claim_url,expires_at,denomination\n"

_seq = itertools.count(1)


@dataclass
class Ctx:
    """What one case builds: users, the HTTP client, ids, and the rows to look for."""

    users: dict[str, Any]
    client: DjangoClient | None = None
    api: ApiUser | None = None
    data: dict[str, Any] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)  # each must be in the response
    hidden: list[str] = field(default_factory=list)  # each must not (filtered out)

    @property
    def http(self) -> DjangoClient:
        assert self.client is not None
        return self.client

    @property
    def shop(self) -> ApiUser:
        assert self.api is not None
        return self.api

    @property
    def actor(self) -> Actor:
        return Actor.for_user(self.users["admin"])


@dataclass(frozen=True)
class Case:
    """One page or endpoint: seed N rows, add 3N, call it the same way each time.

    `role` is the dashboard role that uses the page, or "api". `rows` extracts
    the rows a response shows when plain marker search does not fit. `fixed`
    pins the exact count of an endpoint without rows.
    """

    id: str
    role: str
    seed: Callable[[Ctx], None]
    grow: Callable[[Ctx], None]
    call: Callable[[Ctx], Any]
    status: int = 200
    rows: Callable[[str], list[str]] | None = None
    rows_grow: bool = True
    fixed: int | None = None


# --- Fixtures -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.API_RATE_LIMIT_PER_MINUTE = 10_000
    settings.API_RATE_LIMIT_PER_10_SECONDS = 10_000
    settings.API_RATE_LIMIT_ORDER_READS_PER_HOUR = 10_000
    # Every API request reads its credential: the same count however long a test runs.
    settings.API_CREDENTIAL_CACHE_SECONDS = 0
    settings.REVEAL_RATE_PER_HOUR = 10_000


@pytest.fixture
def ctx(db) -> Ctx:
    # An audited request is one INSERT of an unsealed event, whichever chain it falls in.
    return Ctx(users={role: UserFactory(username=f"qc-{role}", role=role) for role in ROLES})


# --- Requests -----------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def _get(name: str, *args: Any, query: dict[str, Any] | None = None, htmx: bool = False):
    def call(ctx: Ctx) -> HttpResponse:
        ids = [ctx.data[a] for a in args]
        return ctx.http.get(
            reverse(f"dashboard:{name}", args=ids), query or {}, **(HTMX if htmx else {})
        )

    return call


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _json_rows(*path: str, key: str | None = None) -> Callable[[str], list[str]]:
    """The rows of a JSON answer: `path` leads to a list, `key` picks each row's label."""

    def rows(body: str) -> list[str]:
        value: Any = json.loads(body)
        for step in path:
            value = value[step]
        items = value if isinstance(value, list) else [value]
        return [str(item[key]) if key else str(item) for item in items]

    return rows


# --- Dashboard: orders --------------------------------------------------------------


def _orders(ctx: Ctx, count: int, *, shown: bool = True, **fields: Any) -> list[Order]:
    """Orders of their own product and client each: a lazy join would cost one per row."""
    made = []
    for _ in range(count):
        k = next(_seq)
        order = OrderFactory(
            product=ProductFactory(name=f"QC Product {k}"),
            client=ClientFactory(name=f"QC Client {k}"),
            reference_code=f"QC-{k:05d}",
            **fields,
        )
        (ctx.markers if shown else ctx.hidden).append(order.reference_code)
        made.append(order)
    return made


def _order_list(count: int) -> Callable[[Ctx], None]:
    return lambda ctx: _orders(ctx, count)


def _failed_among_others(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        _orders(ctx, count, status=OrderStatus.FAILED, sub_status=SubStatus.VENDOR_ORDER_FAILED)
        _orders(ctx, count, shown=False, status=OrderStatus.DELIVERED)

    return build


def _searched_among_others(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        _orders(ctx, count, customer_email="vip@example.com")
        _orders(ctx, count, shown=False, customer_email="someone@example.com")

    return build


def _delivered_order(ctx: Ctx) -> Order:
    order = OrderFactory(
        status=OrderStatus.DELIVERED,
        sub_status=SubStatus.INVENTORY_FULFILLED,
        delivered_at=timezone.now(),
        quantity=1,
    )
    ctx.data["order"] = order.pk
    ctx.data["position"] = 0
    return order


def _delivered_item(ctx: Ctx, order: Order) -> tuple[Voucher, str]:
    """One more delivered unit on `order`; the voucher and its card number."""
    card = f"6011{next(_seq):012d}"
    ctx.data["position"] += 1
    voucher = VoucherFactory(
        product=order.product,
        card_number=card,
        card_last4=card[-4:],
        status=InventoryStatus.DELIVERED,
        delivered_at=timezone.now(),
    )
    OrderItemFactory(
        order=order,
        position=ctx.data["position"],
        voucher=voucher,
        status=ItemStatus.DELIVERED,
        delivered_at=timezone.now(),
    )
    Order.objects.filter(pk=order.pk).update(quantity=ctx.data["position"])
    return voucher, card


def _order_children(count: int) -> Callable[[Ctx], None]:
    """Per child: an item with its voucher, a timeline step, a webhook delivery with
    two attempts, a failed delivery e-mail and an audit event; each is shown on the
    order page."""

    def build(ctx: Ctx) -> None:
        order = Order.objects.get(pk=ctx.data["order"])
        staff = ctx.users["support"]
        for _ in range(count):
            voucher, _card = _delivered_item(ctx, order)
            k = next(_seq)
            StatusChange.objects.create(
                order=order,
                from_status=OrderStatus.PENDING,
                to_status=OrderStatus.DELIVERED,
                to_sub_status=SubStatus.INVENTORY_FULFILLED,
                actor_user=staff,
                actor_label=f"user:{staff.username}",
                note=f"QC step {k}",
            )
            delivery = delivered_webhook(
                order, url=f"https://hooks.example/qc-{k}", first_status=500, durations=(10, 12)
            )
            audit_record(
                action="voucher.reveal",
                actor=Actor.for_user(staff),
                order_id=order.pk,
                voucher_id=voucher.pk,
                reason=f"QC audit {k}",
            )
            DeliveryEmail.objects.create(
                order=order,
                recipient=f"qc-{k}@example.com",
                status=DeliveryEmailStatus.FAILED,
                attempts=1,
                last_error="Connection refused by the SMTP server",
            )
            ctx.markers += [
                f'id="voucher-{voucher.pk}"',
                f"QC step {k}",
                f"qc-{k}@example.com",
                delivery.endpoint.url,
                f"QC audit {k}",
            ]

    return build


def _order_detail_seed(ctx: Ctx) -> None:
    _delivered_order(ctx)
    _order_children(N)(ctx)


def _order_row_seed(ctx: Ctx) -> None:
    order = _orders(ctx, 1, status=OrderStatus.PENDING, sub_status=SubStatus.PROCESSING)[0]
    ctx.data["order"] = order.pk
    ctx.markers.append(f'id="order-row-{order.pk}"')


def _order_row_grow(ctx: Ctx) -> None:
    """More orders in the table and more items on the order; the row stays one row."""
    _orders(ctx, GROW, shown=False)
    for position in range(1, GROW + 1):
        OrderItem.objects.create(order_id=ctx.data["order"], position=position)


def _voucher_seed(ctx: Ctx) -> None:
    """One delivered voucher to show or reveal, on an order with N items."""
    order = _delivered_order(ctx)
    target, card = _delivered_item(ctx, order)
    ctx.data["voucher"] = target.pk
    ctx.data["card"] = card
    _voucher_siblings(N - 1)(ctx)
    ctx.markers.append(f'id="voucher-{target.pk}"')


def _voucher_siblings(count: int) -> Callable[[Ctx], None]:
    """More delivered vouchers on the same order and more audit events of the voucher."""

    def build(ctx: Ctx) -> None:
        order = Order.objects.get(pk=ctx.data["order"])
        for _ in range(count):
            _delivered_item(ctx, order)
            audit_record(
                action="voucher.reveal",
                actor=ctx.actor,
                order_id=order.pk,
                voucher_id=ctx.data["voucher"],
                reason="QC earlier reveal",
            )

    return build


def _voucher_reveal_seed(ctx: Ctx) -> None:
    _voucher_seed(ctx)
    ctx.markers.append(ctx.data["card"])  # the revealed card number


def _voucher_reveal(ctx: Ctx) -> HttpResponse:
    url = reverse("dashboard:voucher_reveal", args=[ctx.data["voucher"]])
    return ctx.http.post(url, {"reason": "not_received", "note": "ticket 7"}, **HTMX)


def _audit_events(count: int) -> Callable[[Ctx], None]:
    """Audit events by different staff users, on different orders and vouchers."""

    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            staff = UserFactory(username=f"qc-auditor-{k}")
            order = OrderFactory()
            voucher = VoucherFactory(card_number=f"6011{k:012d}", card_last4=f"{k:04d}"[-4:])
            audit_record(
                action="voucher.reveal",
                actor=Actor.for_user(staff),
                order_id=order.pk,
                voucher_id=voucher.pk,
                reason=f"QC audit {k}",
            )
            ctx.markers += [f"QC audit {k}", f"user:qc-auditor-{k}", voucher.masked_card_number]

    return build


# --- Dashboard: inventory -----------------------------------------------------------


def _stocked_products(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            product = ProductFactory(name=f"QC Stock {k}")
            VoucherFactory(product=product)
            VoucherFactory(product=product, denomination=Decimal("10.00"))
            VoucherFactory(product=product, status=InventoryStatus.BLOCKED)
            ctx.markers.append(f"QC Stock {k}")

    return build


def _voucher_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            product = ProductFactory(name=f"QC Voucher Product {k}")
            batch = ImportBatch.objects.create(
                product=product, file_name=f"qc-{k}.csv", file_sha256="0" * 64
            )
            voucher = VoucherFactory(product=product, batch=batch)
            ctx.markers.append(f'id="voucher-row-{voucher.pk}"')

    return build


def _batch_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            ImportBatch.objects.create(
                product=ProductFactory(name=f"QC Batch Product {k}"),
                uploaded_by=UserFactory(username=f"qc-uploader-{k}"),
                file_name=f"qc-batch-{k}.csv",
                file_sha256="0" * 64,
                status=ImportBatchStatus.IMPORTED,
                row_count=1,
                imported_count=1,
            )
            ctx.markers += [f"qc-batch-{k}.csv", f"QC Batch Product {k}", f"qc-uploader-{k}"]

    return build


def _upload_bad_rows(count: int) -> Callable[[Ctx], None]:
    """Upload a file with `count` rows that fail validation; the preview lists each."""

    def build(ctx: Ctx) -> None:
        product = ctx.data.get("import_product") or ProductFactory(name="QC Import Product")
        ctx.data["import_product"] = product
        content = CSV_HEADER + "not-a-row\n" * count
        upload = SimpleUploadedFile(f"qc-{count}.csv", content.encode(), "text/csv")
        response = ctx.http.post(
            reverse("dashboard:inventory_import"), {"product": product.pk, "file": upload}
        )
        assert response.status_code == 302, response.content[:300]
        ctx.data["batch"] = ImportBatch.objects.latest("id").pk
        # Row numbers count the header as row 1, as a spreadsheet does.
        ctx.markers = [str(row) for row in range(2, count + 2)]

    return build


def _preview_error_rows(body: str) -> list[str]:
    table = body.split('class="table compact import-errors"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr><td class="num">(\d+)</td><td>has 1 cells', table)


# --- Dashboard: finance -------------------------------------------------------------


def _refundable(ctx: Ctx, *, reviewed: bool = True) -> Order:
    """A failed order whose refund awaits finance, with an approval by a reviewer."""
    k = next(_seq)
    order = OrderFactory(
        client=ClientFactory(name=f"QC Client {k}"),
        reference_code=f"QC-{k:05d}",
        status=OrderStatus.FAILED,
        sub_status=SubStatus.VENDOR_ORDER_FAILED,
        refund_status=RefundStatus.NOT_REFUNDED,
        refund_amount=Decimal("25.00"),
        wallet_currency="USD",
        wallet_amount=Decimal("25.00"),
    )
    if reviewed:
        reviewer = UserFactory(username=f"qc-reviewer-{k}")
        RefundReview.objects.create(
            order=order, decision=RefundReview.Decision.APPROVE, user=reviewer
        )
    return order


def _refund_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            order = _refundable(ctx)
            reviewer = order.refund_reviews.get().user.username
            ctx.markers += [order.reference_code, reviewer]

    return build


def _refund_decide_seed(ctx: Ctx) -> None:
    ticked = _refundable(ctx, reviewed=False).pk
    ctx.data["ticked"] = [ticked]
    ctx.markers.append(f"Order {ticked}: refund held")
    _refund_rows(N)(ctx)


def _refund_decide(ctx: Ctx) -> HttpResponse:
    """Hold the ticked orders; htmx gets the queue (under the same filters) back."""
    body = {"order": ctx.data["ticked"], "decision": "HOLD", "note": "QC hold", "return_query": ""}
    return ctx.http.post(reverse("dashboard:refund_decide"), body, **HTMX)


def _wallet_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            WalletFactory(client=ClientFactory(name=f"QC Client {k}"))
            ctx.markers.append(f"QC Client {k}")

    return build


def _wallet_seed(ctx: Ctx) -> None:
    ctx.data["wallet"] = WalletFactory(client=ClientFactory(name="QC Wallet Client")).pk
    _ledger_rows(N)(ctx)


def _ledger_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            wallet_top_up(
                wallet_id=ctx.data["wallet"], amount="10.00", actor=ctx.actor, note=f"QC ledger {k}"
            )
            ctx.markers.append(f"QC ledger {k}")

    return build


def _client_rows(count: int) -> Callable[[Ctx], None]:
    """Clients, each with two wallets, a credential and an API error."""

    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            client = ClientFactory(name=f"QC Partner {k}")
            for currency in ("USD", "EUR"):
                WalletFactory(client=client, currency=currency)
            issued = credential_issue(client=client, actor=ctx.actor)
            ApiErrorRecord.objects.create(
                client=client, credential=issued.credential, status=404, method="GET", path="/"
            )
            ctx.markers.append(f"QC Partner {k}")

    return build


def _client_detail_seed(ctx: Ctx) -> None:
    ctx.data["client_obj"] = ClientFactory(name="QC Workspace Client")
    ctx.data["client"] = ctx.data["client_obj"].pk
    WalletFactory(client=ctx.data["client_obj"], currency="USD")
    _client_detail_rows(N)(ctx)


def _client_detail_rows(count: int) -> Callable[[Ctx], None]:
    """Credentials, webhook endpoints and API errors of one client."""

    def build(ctx: Ctx) -> None:
        client = ctx.data["client_obj"]
        for _ in range(count):
            k = next(_seq)
            credential = credential_issue(
                client=client, actor=ctx.actor, allowed_networks=[f"203.0.113.{k % 250}"]
            ).credential
            url = f"https://hooks.example/qc-workspace-{k}"
            WebhookEndpoint.objects.create(client=client, url=url, secret="s")
            ApiErrorRecord.objects.create(
                client=client,
                credential=credential,
                status=404,
                error_code="not_found",
                method="GET",
                path=f"/api/v1/orders/qc-{k}",
            )
            ctx.markers += [credential.public_key, url, f"/api/v1/orders/qc-{k}"]

    return build


def _delivery_log_seed(ctx: Ctx) -> None:
    client = ClientFactory(name="QC Hooks Client")
    endpoint = WebhookEndpoint.objects.create(
        client=client, url="https://hooks.example/", secret="s"
    )
    ctx.data.update(client=client.pk, endpoint=endpoint.pk, endpoint_obj=endpoint)
    _delivery_rows(N)(ctx)


def _delivery_rows(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            delivery = WebhookDelivery.objects.create(
                endpoint=ctx.data["endpoint_obj"],
                event="webhook.test",
                payload={},
                status="FAILED",
                attempts=1,
            )
            WebhookAttempt.objects.create(delivery=delivery, status_code=500, error="QC down")
            ctx.markers.append(f'id="delivery-{delivery.pk}"')

    return build


RECON_CURRENCIES = ["USD", "EUR", "GBP", "JPY"]


def _recon_cells(cells: list[tuple[str, int]]) -> Callable[[Ctx], None]:
    """Top-ups in wallets of several currencies on several past days: one row per
    (UTC day, currency)."""

    def build(ctx: Ctx) -> None:
        wallets = ctx.data.setdefault("wallets", {})
        for currency, days_ago in cells:
            if currency not in wallets:
                wallets[currency] = WalletFactory(
                    client=ClientFactory(name=f"QC {currency}"), currency=currency
                ).pk
            entry = wallet_top_up(
                wallet_id=wallets[currency], amount="10.00", actor=ctx.actor, note="QC"
            )
            when = timezone.now() - timedelta(days=days_ago)
            WalletEntry.objects.filter(pk=entry.pk).update(created_at=when)
            day = when.astimezone(UTC).date().isoformat()
            ctx.markers.append(f'data-day="{day}" data-currency="{currency}"')

    return build


_RECON_SEED = [(c, d) for c in RECON_CURRENCIES[:2] for d in range(2)]
_RECON_GROW = [(c, d) for c in RECON_CURRENCIES for d in range(4) if (c, d) not in _RECON_SEED]


def _overview_products(count: int) -> Callable[[Ctx], None]:
    """Products delivered today and out of stock: in the chart and the low-stock table."""

    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            product = ProductFactory(name=f"QC Overview {k}")
            OrderFactory(
                product=product,
                status=OrderStatus.DELIVERED,
                sub_status=SubStatus.INVENTORY_FULFILLED,
                delivered_at=timezone.now(),
            )
            ctx.markers.append(product.name)

    return build


# --- API ----------------------------------------------------------------------------


def _api_orders(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            OrderFactory(
                client=ctx.shop.client,
                product=ProductFactory(name=f"QC Product {k}"),
                reference_code=f"QC-{k:05d}",
            )
            ctx.markers.append(f"QC-{k:05d}")

    return build


def _api_products(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for _ in range(count):
            k = next(_seq)
            product = ProductFactory(name=f"QC Product {k}")
            VoucherFactory(product=product)
            ctx.markers.append(product.name)

    return build


def _unrelated_rows(ctx: Ctx) -> None:
    """Many more orders, products and stock, none of which the request returns."""
    markers = list(ctx.markers)
    _api_orders(GROW)(ctx)
    _api_products(GROW)(ctx)
    ctx.markers = markers


def _catalogue_product(ctx: Ctx) -> None:
    product = ProductFactory(
        name="QC Catalogue", denominations=[f"{v}.00" for v in range(1, N + GROW + 1)]
    )
    ctx.data["product"] = product.pk
    ctx.data["product_obj"] = product
    _product_stock(range(1, N + 1))(ctx)


def _product_stock(values: range) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for value in values:
            VoucherFactory(product=ctx.data["product_obj"], denomination=Decimal(value))
            ctx.markers.append(f"{value}.00")

    return build


def _stock_units(count: int) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        if "product" not in ctx.data:
            ctx.data["product_obj"] = ProductFactory(name="QC Units")
            ctx.data["product"] = ctx.data["product_obj"].pk
        for _ in range(count):
            VoucherFactory(product=ctx.data["product_obj"])
        units = Voucher.objects.filter(product_id=ctx.data["product"]).count()
        ctx.markers = [str(units)]

    return build


def _api_detail_seed(ctx: Ctx) -> None:
    """An order of N units placed by the client and delivered from stock."""
    product = ProductFactory(name="QC Delivered", bulk_limit=N + GROW)
    placed = order_create(
        client=ctx.shop.client,
        actor=Actor.system("test"),
        product_id=product.pk,
        denomination="25.00",
        quantity=N,
        reference_code="QC-DETAIL",
        customer=Customer(name="Ada", email="ada@example.com"),
    )
    cards = [f"6011{next(_seq):012d}" for _ in range(N)]
    deliver_order(placed.order, [VoucherFactory(product=product, card_number=c) for c in cards])
    ctx.data["order"] = placed.order.pk
    ctx.data["position"] = N
    ctx.markers += cards


def _api_detail_grow(ctx: Ctx) -> None:
    order = Order.objects.get(pk=ctx.data["order"])
    for _ in range(GROW):
        _voucher, card = _delivered_item(ctx, order)
        ctx.markers.append(card)


def _wallets(currencies: list[str]) -> Callable[[Ctx], None]:
    def build(ctx: Ctx) -> None:
        for currency in currencies:
            if currency != "USD":  # the shop's own first wallet
                WalletFactory(client=ctx.shop.client, currency=currency)
            ctx.markers.append(currency)

    return build


def _api_ledger(count: int) -> Callable[[Ctx], None]:
    """Entries in two of the client's wallets, newest first across both."""

    def build(ctx: Ctx) -> None:
        if "eur" not in ctx.data:
            ctx.data["eur"] = WalletFactory(client=ctx.shop.client, currency="EUR").pk
        for n in range(count):
            k = next(_seq)
            wallet_id = ctx.shop.wallet.pk if n % 2 else ctx.data["eur"]
            wallet_top_up(
                wallet_id=wallet_id, amount="5.00", actor=ctx.actor, note=f"QC ledger {k}"
            )
            ctx.markers.append(f"QC ledger {k}")

    return build


def _token(ctx: Ctx) -> HttpResponse:
    body = {"api_key": ctx.shop.credential.public_key, "api_secret": ctx.shop.secret}
    return ctx.shop.http.post("/api/v1/auth/token", body, content_type="application/json")


def _token_seed(ctx: Ctx) -> None:
    ctx.markers.append("Bearer")


def _create_seed(ctx: Ctx) -> None:
    product = ProductFactory(name="QC Create")
    VoucherFactory(product=product)
    ctx.data["product"] = product.pk
    ctx.markers.append("PLACED")


def _create(ctx: Ctx) -> HttpResponse:
    body = {
        "product_id": ctx.data["product"],
        "denomination": "25.00",
        "quantity": 1,
        "reference_code": f"QC-CREATE-{next(_seq)}",
        "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
    }
    return ctx.shop.post("/api/v1/orders", body)


def _charges(ctx: Ctx) -> HttpResponse:
    body = {"product_id": ctx.data["product"], "denomination": "25.00", "quantity": 1}
    return ctx.shop.post("/api/v1/charges", body)


def _charges_seed(ctx: Ctx) -> None:
    _create_seed(ctx)
    ctx.markers = ["25.00"]


def _api_get(path: str, *ids: str) -> Callable[[Ctx], HttpResponse]:
    def call(ctx: Ctx) -> HttpResponse:
        return ctx.shop.get(path.format(*[ctx.data[i] for i in ids]))

    return call


# --- The table ----------------------------------------------------------------------

CASES = [
    # Dashboard: orders and vouchers
    Case("overview", "support", _overview_products(N), _overview_products(GROW), _get("overview")),
    Case("order_list", "support", _order_list(N), _order_list(GROW), _get("order_list")),
    Case(
        "order_list htmx",
        "support",
        _order_list(N),
        _order_list(GROW),
        _get("order_list", htmx=True),
    ),
    Case(
        "order_list ?status=FAILED",
        "support",
        _failed_among_others(N),
        _failed_among_others(GROW),
        _get("order_list", query={"status": "FAILED"}),
    ),
    Case(
        "order_list ?q=e-mail",
        "support",
        _searched_among_others(N),
        _searched_among_others(GROW),
        _get("order_list", query={"q": "vip@example.com"}),
    ),
    Case(
        "order_detail",
        "support",
        _order_detail_seed,
        _order_children(GROW),
        _get("order_detail", "order"),
    ),
    Case(
        "order_detail htmx",
        "support",
        _order_detail_seed,
        _order_children(GROW),
        _get("order_detail", "order", htmx=True),
    ),
    Case(
        "order_row htmx",
        "support",
        _order_row_seed,
        _order_row_grow,
        _get("order_row", "order", htmx=True),
        rows_grow=False,
    ),
    Case(
        "voucher_masked htmx",
        "support",
        _voucher_seed,
        _voucher_siblings(GROW),
        _get("voucher_masked", "voucher", htmx=True),
        rows_grow=False,
    ),
    Case(
        "voucher_reveal POST htmx",
        "support",
        _voucher_reveal_seed,
        _voucher_siblings(GROW),
        _voucher_reveal,
        rows_grow=False,
    ),
    Case("audit_log", "admin", _audit_events(N), _audit_events(GROW), _get("audit_log")),
    # Dashboard: inventory
    Case(
        "inventory_stock",
        "inventory",
        _stocked_products(N),
        _stocked_products(GROW),
        _get("inventory_stock"),
    ),
    Case(
        "inventory_import_preview",
        "inventory",
        _upload_bad_rows(N),
        _upload_bad_rows(N + GROW),
        _get("inventory_import_preview", "batch"),
        rows=_preview_error_rows,
    ),
    Case(
        "inventory_vouchers",
        "inventory",
        _voucher_rows(N),
        _voucher_rows(GROW),
        _get("inventory_vouchers"),
    ),
    Case(
        "inventory_batches",
        "inventory",
        _batch_rows(N),
        _batch_rows(GROW),
        _get("inventory_batches"),
    ),
    # Dashboard: finance
    Case("refund_queue", "finance", _refund_rows(N), _refund_rows(GROW), _get("refund_queue")),
    Case(
        "refund_decide POST htmx (1 ticked, queue grows)",
        "finance",
        _refund_decide_seed,
        _refund_rows(GROW),
        _refund_decide,
    ),
    Case("wallet_list", "finance", _wallet_rows(N), _wallet_rows(GROW), _get("wallet_list")),
    Case(
        "wallet_detail",
        "finance",
        _wallet_seed,
        _ledger_rows(GROW),
        _get("wallet_detail", "wallet"),
    ),
    Case(
        "wallet_detail htmx",
        "finance",
        _wallet_seed,
        _ledger_rows(GROW),
        _get("wallet_detail", "wallet", htmx=True),
    ),
    Case("client_list", "finance", _client_rows(N), _client_rows(GROW), _get("client_list")),
    Case(
        "client_detail",
        "finance",
        _client_detail_seed,
        _client_detail_rows(GROW),
        _get("client_detail", "client"),
    ),
    Case(
        "client_detail htmx",
        "finance",
        _client_detail_seed,
        _client_detail_rows(GROW),
        _get("client_detail", "client", htmx=True),
    ),
    Case(
        "client_webhook_detail",
        "finance",
        _delivery_log_seed,
        _delivery_rows(GROW),
        _get("client_webhook_detail", "client", "endpoint"),
    ),
    Case(
        "reconciliation",
        "finance",
        _recon_cells(_RECON_SEED),
        _recon_cells(_RECON_GROW),
        _get("reconciliation"),
    ),
    Case("export_orders", "finance", _order_list(N), _order_list(GROW), _get("export_orders")),
    Case("export_refunds", "finance", _refund_rows(N), _refund_rows(GROW), _get("export_refunds")),
    Case(
        "export_ledger",
        "finance",
        _wallet_seed,
        _ledger_rows(GROW),
        _get("export_ledger", "wallet"),
    ),
    # API
    Case(
        "POST /api/v1/auth/token",
        "api",
        _token_seed,
        _unrelated_rows,
        _token,
        rows=_json_rows("token_type"),
        rows_grow=False,
        fixed=1,
    ),
    Case(
        "GET /api/v1/products",
        "api",
        _api_products(N),
        _api_products(GROW),
        _api_get("/api/v1/products"),
        rows=_json_rows("results", key="name"),
    ),
    Case(
        "GET /api/v1/products/{id}",
        "api",
        _catalogue_product,
        _product_stock(range(N + 1, N + GROW + 1)),
        _api_get("/api/v1/products/{}", "product"),
        rows=_json_rows("instant_denominations"),
    ),
    Case(
        "GET /api/v1/products/{id}/availability",
        "api",
        _stock_units(N),
        _stock_units(GROW),
        _api_get("/api/v1/products/{}/availability?denomination=25.00", "product"),
        rows=_json_rows("available_units"),
        rows_grow=False,
    ),
    Case(
        "POST /api/v1/charges",
        "api",
        _charges_seed,
        _unrelated_rows,
        _charges,
        rows=_json_rows("total"),
        rows_grow=False,
        fixed=4,
    ),
    Case(
        "POST /api/v1/orders",
        "api",
        _create_seed,
        _unrelated_rows,
        _create,
        status=201,
        rows=_json_rows("status"),
        rows_grow=False,
        # The credential; order_create (3 reads, then order, items, timeline, the
        # debit's 2, the audit event's INSERT and, the order being the stock
        # batcher's, the NOTIFY that wakes it on PostgreSQL (other databases
        # poll: no statement), inside a SAVEPOINT pair that is BEGIN/COMMIT
        # outside the test's transaction); the stock behind delivery_time.
        # Nothing is read back.
        fixed=14 if connection.vendor == "postgresql" else 13,
    ),
    Case(
        "GET /api/v1/orders",
        "api",
        _api_orders(N),
        _api_orders(GROW),
        _api_get("/api/v1/orders"),
        rows=_json_rows("results", key="reference_code"),
    ),
    Case(
        "GET /api/v1/orders/{id}",
        "api",
        _api_detail_seed,
        _api_detail_grow,
        _api_get("/api/v1/orders/{}", "order"),
        rows=_json_rows("vouchers", key="card_number"),
        # The credential (this module turns its cache off), ONE query for the order,
        # its items and vouchers, then audit_record's one INSERT (sealed later by
        # the worker).
        fixed=3,
    ),
    Case(
        "GET /api/v1/wallet",
        "api",
        _wallets(["USD", "EUR", "GBP", "JPY"]),
        _wallets(
            ["CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "MXN", "BRL"]
        ),
        _api_get("/api/v1/wallet"),
        rows=_json_rows("wallets", key="currency"),
    ),
    Case(
        "GET /api/v1/wallet/transactions",
        "api",
        _api_ledger(N),
        _api_ledger(GROW),
        _api_get("/api/v1/wallet/transactions"),
        rows=_json_rows("results", key="note"),
    ),
]


# --- Tests --------------------------------------------------------------------------


def _count(case: Case, ctx: Ctx) -> tuple[list[str], list[str]]:
    """The SQL of one request (a streamed body is read inside) and the rows it shows."""
    with CaptureQueriesContext(connection) as queries:
        response = case.call(ctx)
        body = _body(response)
    # Copied now: the context reads the connection's log, which the next request clears.
    sql = [query["sql"] for query in queries.captured_queries]
    assert response.status_code == case.status, body[:500]
    shown = case.rows(body) if case.rows else [m for m in ctx.markers if m in body]
    missing = [m for m in ctx.markers if m not in shown]
    assert not missing, f"{case.id}: not shown: {missing[:5]}"
    leaked = [m for m in ctx.hidden if m in body]
    assert not leaked, f"{case.id}: filtered out but shown: {leaked[:5]}"
    return sql, shown


def _sql(queries: list[str]) -> str:
    return "\n".join(sql[:200] for sql in queries)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_query_count_does_not_grow_with_rows(case: Case, ctx: Ctx, system_actor):
    if case.role == "api":
        ctx.api = make_api_user("QC Shop", system_actor)
    else:
        ctx.client = client_for(ctx.users[case.role])
    case.seed(ctx)
    _count(case, ctx)  # warm: per-process caches and first-use writes
    few, shown_few = _count(case, ctx)

    case.grow(ctx)
    many, shown_many = _count(case, ctx)

    if case.rows_grow:
        assert len(shown_many) >= len(shown_few) + GROW, (len(shown_few), len(shown_many))
    assert len(many) == len(few), (
        f"{case.id}: {len(few)} queries for {len(shown_few)} rows, "
        f"{len(many)} for {len(shown_many)}:\n{_sql(many)}"
    )
    if case.fixed is not None:
        assert len(many) == case.fixed, _sql(many)


def test_bulk_refund_decision_costs_a_fixed_number_of_queries_per_ticked_order(ctx: Ctx):
    """Each ticked order is decided in its own transaction, so the cost grows by the
    same few queries per order: never with the queue, never more for later orders."""
    ctx.client = client_for(ctx.users["finance"])
    _refund_rows(N)(ctx)
    ctx.data["ticked"] = [_refundable(ctx, reviewed=False).pk]
    assert _refund_decide(ctx).status_code == 200  # warm: per-process caches
    costs = {}
    for ticked in (1, 2, 4):
        ctx.data["ticked"] = [_refundable(ctx, reviewed=False).pk for _ in range(ticked)]
        with CaptureQueriesContext(connection) as queries:
            response = _refund_decide(ctx)
        costs[ticked] = len(queries)
        assert response.status_code == 200
        html = response.content.decode()
        assert all(f"Order {pk}: refund held" in html for pk in ctx.data["ticked"])
        assert (
            RefundReview.objects.filter(
                order_id__in=ctx.data["ticked"], decision=RefundReview.Decision.HOLD
            ).count()
            == ticked
        )
    per_order = costs[2] - costs[1]
    assert per_order > 0
    assert costs[4] - costs[2] == 2 * per_order, costs
