"""Seed a demo world: clients, catalog, inventory, ~300 orders over 30 days, staff.

Idempotent: every object is looked up before it is created, so a second run
changes nothing. Money moves only through the wallet services and status only
through `order_transition`, so `check_ledger` and `check_audit_chain` pass.
Timestamps are backdated afterwards with queryset updates (services stamp "now").
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from orders.crypto import fingerprint
from orders.enums import (
    Classification,
    DeliveryType,
    ImportBatchStatus,
    InventoryStatus,
    ItemStatus,
    LinkType,
    OrderStatus,
    ProductKind,
    RechargeStatus,
    RefundStatus,
    SubStatus,
    VoucherSource,
)
from orders.errors import InsufficientFunds
from orders.management.commands.create_staff import staff_upsert
from orders.models import (
    ApiCredential,
    Client,
    ImportBatch,
    Order,
    OrderItem,
    Product,
    StatusChange,
    Vendor,
    Voucher,
    Wallet,
    WalletCreditRequest,
    WalletEntry,
)
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.clients import client_create, credential_issue, wallet_open
from orders.services.pricing import Quote, charges_quote
from orders.services.transitions import order_transition
from orders.services.wallets import (
    wallet_credit_decide,
    wallet_credit_request,
    wallet_debit,
    wallet_refund,
    wallet_top_up,
)

CENT = Decimal("0.01")
DEMO_PASSWORD = "starship-demo"  # noqa: S105 - documented demo login, never used in production
STAFF_ROLES = ["support", "finance", "inventory", "admin"]
DAYS = 30
OPEN_WINDOW = timedelta(hours=6)
MID_MONTH_TOP_UP_NOTE = "Demo top-up (mid-month)"

S, U = OrderStatus, SubStatus


@dataclass(frozen=True)
class ClientSpec:
    name: str
    currency: str
    prefix: str
    email: str
    opening: str
    mid_month: str


CLIENTS = [
    ClientSpec("Acme Rewards", "USD", "ACME", "ops@acme-rewards.example", "20000.00", "10000.00"),
    ClientSpec("Blue Bank", "EUR", "BLUE", "loyalty@bluebank.example", "15000.00", "7500.00"),
    ClientSpec("Crown Perks", "GBP", "CRWN", "perks@crownperks.example", "12000.00", "6000.00"),
]


@dataclass(frozen=True)
class Stock:
    denomination: str
    available: int
    expiring_soon: int = 0
    blocked: int = 0


@dataclass(frozen=True)
class ProductSpec:
    name: str
    brand: str
    kind: ProductKind
    currency: str
    delivery_type: DeliveryType
    denominations: tuple[str, ...] = ()
    range: tuple[str, str] | None = None
    stock: tuple[Stock, ...] = ()
    discount_percent: str = "0"
    fee_fixed: str = "0.00"
    fee_percent: str = "0"
    description: str = ""

    @property
    def orderable(self) -> list[Decimal]:
        if self.range is None:
            return [Decimal(d) for d in self.denominations]
        low, high = Decimal(self.range[0]), Decimal(self.range[1])
        steps = ("10", "15", "20", "25", "40", "50", "75", "100", "150")
        return [Decimal(v) for v in steps if low <= Decimal(v) <= high]


GC, TOPUP, DIGITAL = ProductKind.GIFT_CARD, ProductKind.MOBILE_TOPUP, ProductKind.DIGITAL_SERVICE
PIN, URL = DeliveryType.CODE_WITH_PIN, DeliveryType.URL
# Some denominations have inventory (a few expiring within 30 days, a few
# blocked, one low), the rest are bought from the vendor when ordered.
# fmt: off
PRODUCTS = [
    ProductSpec("Amazon.com Gift Card", "Amazon.com", GC, "USD", PIN,
                denominations=("10.00", "25.00", "50.00", "100.00"),
                stock=(Stock("10.00", 25, expiring_soon=2), Stock("25.00", 30, blocked=1),
                       Stock("50.00", 20)),
                discount_percent="2.000",
                description="Redeemable on Amazon.com for millions of items."),
    ProductSpec("Steam Wallet Code", "Steam", GC, "USD", PIN,
                denominations=("20.00", "50.00", "100.00"),
                stock=(Stock("20.00", 6), Stock("50.00", 15, blocked=1)),
                description="Adds funds to a Steam Wallet for games, software and hardware."),
    ProductSpec("Apple Gift Card", "Apple", GC, "USD", PIN,
                range=("10.00", "500.00"),
                stock=(Stock("25.00", 15, expiring_soon=1), Stock("50.00", 12)),
                description="For apps, games, music, iCloud and products at Apple."),
    ProductSpec("AT&T Prepaid Refill", "AT&T", TOPUP, "USD", PIN,
                denominations=("15.00", "25.00", "50.00"),
                fee_fixed="0.50",
                description="Direct refill of an AT&T Prepaid line."),
    ProductSpec("Netflix Gift Card", "Netflix", DIGITAL, "USD", URL,
                denominations=("15.00", "30.00", "60.00"),
                stock=(Stock("30.00", 12, expiring_soon=2),),
                description="Netflix membership credit, delivered as a redemption link."),
    ProductSpec("Xbox Game Pass Ultimate", "Xbox", DIGITAL, "USD", PIN,
                denominations=("19.99", "59.99"),
                description="1 or 3 months of Xbox Game Pass Ultimate."),
    ProductSpec("Zalando Gift Card", "Zalando", GC, "EUR", PIN,
                denominations=("25.00", "50.00", "100.00"),
                stock=(Stock("25.00", 20, expiring_soon=1), Stock("50.00", 10)),
                discount_percent="1.500",
                description="Fashion and shoes on Zalando."),
    ProductSpec("IKEA Gift Card", "IKEA", GC, "EUR", PIN,
                range=("10.00", "300.00"),
                description="Valid in IKEA stores and online."),
    ProductSpec("Vodafone Top-up", "Vodafone", TOPUP, "EUR", PIN,
                denominations=("10.00", "15.00", "20.00", "30.00"),
                fee_percent="1.000",
                description="Prepaid credit for Vodafone mobile numbers."),
    ProductSpec("Spotify Premium", "Spotify", DIGITAL, "EUR", URL,
                denominations=("10.00", "30.00", "60.00"),
                stock=(Stock("10.00", 15), Stock("30.00", 8, expiring_soon=1)),
                description="Spotify Premium subscription time, delivered as a link."),
    ProductSpec("Marks & Spencer Gift Card", "Marks & Spencer", GC, "GBP", PIN,
                denominations=("10.00", "25.00", "50.00"),
                stock=(Stock("10.00", 15, expiring_soon=1), Stock("25.00", 18)),
                description="Food, clothing and home at M&S."),
    ProductSpec("Uber Eats Gift Card", "Uber Eats", GC, "GBP", URL,
                range=("15.00", "200.00"),
                description="Credit for Uber Eats orders, delivered as a link."),
    ProductSpec("EE Mobile Top-up", "EE", TOPUP, "GBP", PIN,
                range=("5.00", "50.00"),
                description="Pay-as-you-go credit for EE numbers."),
    ProductSpec("Disney+ Gift Subscription", "Disney+", DIGITAL, "GBP", URL,
                denominations=("7.99", "79.90"),
                stock=(Stock("7.99", 10),),
                description="Monthly or annual Disney+ subscription, delivered as a link."),
]
# fmt: on

# Per client: the outcome of each of its 100 orders. Closed ones spread over
# 30 days; open ones (PLACED/PENDING) in the last few hours, as in real life.
CLOSED_OUTCOMES = {
    "delivered": 55,
    "delivered_reconciled": 5,
    "failed_refunded": 8,
    "failed_open": 2,
    "cancelled_refunded": 7,
    "cancelled_open": 2,
    "partial_refunded": 4,
    "partial_open": 2,
}
OPEN_OUTCOMES = {
    "placed": 4,
    "pending_processing": 3,
    "pending_vendor_order_pending": 3,
    "pending_vendor_order_created": 2,
    "pending_reprocess": 3,
}
FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Katherine", "Tim", "Barbara", "Ken"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Hamilton", "Johnson", "Liskov", "Ritchie"]
FAILURES = {
    U.VENDOR_ORDER_FAILED: "Vendor rejected the order: denomination temporarily unavailable.",
    U.REPROCESS_EXPIRED: "Vendor did not answer before the retry window closed.",
}


@dataclass
class PlannedOrder:
    reference_code: str
    outcome: str
    placed_at: datetime
    product: ProductSpec
    denomination: Decimal
    quantity: int
    customer: tuple[str, str, str]


class Step(NamedTuple):
    """One move of an order's timeline, `after` the previous one."""

    after: timedelta
    status: OrderStatus
    sub_status: SubStatus
    actor: Actor
    note: str = ""


@dataclass
class Path:
    """How a planned order unfolds: its steps, units delivered, refund owed."""

    steps: list[Step]
    delivered: int = 0
    failure_reason: str = ""
    refund: str = ""  # "" nothing owed, "open" left for finance, "refund" paid back


@dataclass
class Backdates:
    """Real timestamps for rows the services stamped with "now"."""

    orders: list[Order] = field(default_factory=list)
    entries: list[WalletEntry] = field(default_factory=list)
    vouchers: list[Voucher] = field(default_factory=list)
    # Per order: the time of each StatusChange, in the order they were written.
    timelines: dict[int, list[datetime]] = field(default_factory=dict)


class Command(BaseCommand):
    help = "Create (once) a demo world: clients, wallets, catalog, inventory, orders, staff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=20250101, help="Random seed.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.seed: int = options["seed"]
        self.rng = random.Random(self.seed)
        self.now = timezone.now().replace(microsecond=0)
        self.start = self.now - timedelta(days=DAYS)
        self.lines: list[str] = []
        self.backdates = Backdates()
        self.quotes: dict[tuple[int, int, Decimal, int], Quote] = {}
        # One transaction: a failed run leaves nothing half-made behind.
        with transaction.atomic():
            staff = self._staff()
            self.system = Actor.system("seed_demo")
            self.fulfilment = Actor.system("fulfilment")
            self.support = Actor.for_user(staff["support"])
            self.finance = Actor.for_user(staff["finance"])
            self.admin = Actor.for_user(staff["admin"])
            self.vendor, _ = Vendor.objects.get_or_create(
                code="simulated",
                defaults={"name": "Simulated vendor", "is_active": True},
            )
            products = self._catalog()
            self._inventory(products, uploaded_by=staff["inventory"])
            created_orders = 0
            for spec in CLIENTS:
                client, wallet, credential = self._client(spec)
                created_orders += self._orders(spec, client, wallet, credential, products)
            self._apply_backdates()
        self._summary(created_orders)

    # --- Staff --------------------------------------------------------------

    def _mid_month_top_up(self, wallet: Wallet, spec: ClientSpec, *, at: datetime) -> WalletEntry:
        """Finance asks; above the second-approval limit the admin approves."""
        outcome = wallet_credit_request(
            wallet_id=wallet.pk,
            kind="TOP_UP",
            amount=spec.mid_month,
            actor=self.finance,
            reason=MID_MONTH_TOP_UP_NOTE,
        )
        if outcome.request is not None:
            request_id = outcome.request.pk
            outcome = wallet_credit_decide(
                request_id=request_id, actor=self.admin, decision="APPROVE", note="Wire received"
            )
            WalletCreditRequest.objects.filter(pk=request_id).update(
                requested_at=at - timedelta(hours=3), decided_at=at - timedelta(minutes=1)
            )
        assert outcome.entry is not None
        return outcome.entry

    def _staff(self) -> dict[str, Any]:
        users: dict[str, Any] = {}
        user_model = get_user_model()
        self.lines.append(f"Staff logins (password {DEMO_PASSWORD!r} unless changed since):")
        demo_hash: str | None = None
        for role in STAFF_ROLES:
            username = role
            user: Any = user_model.objects.filter(username=username).first()
            if user is None:
                # One hash for all demo logins: hashing is deliberately slow.
                demo_hash = demo_hash or make_password(DEMO_PASSWORD)
                user, _ = staff_upsert(
                    username=username,
                    role=role,
                    password=DEMO_PASSWORD,
                    password_hash=demo_hash,
                    email=f"{username}@example.com",
                )
                state = "created"
            else:
                state = "exists, left unchanged"
            shown = "admin (superuser)" if role == "admin" else role
            self.lines.append(f"  {username:<10} role {shown:<18} {state}")
            users[role] = user
        return users

    # --- Catalog and inventory ----------------------------------------------

    def _catalog(self) -> dict[str, Product]:
        products: dict[str, Product] = {}
        for spec in PRODUCTS:
            is_url = spec.delivery_type == URL
            product, _ = Product.objects.get_or_create(
                vendor=self.vendor,
                name=spec.name,
                defaults={
                    "brand": spec.brand,
                    "kind": spec.kind,
                    "currency": spec.currency,
                    "denominations": list(spec.denominations),
                    "min_denomination": Decimal(spec.range[0]) if spec.range else None,
                    "max_denomination": Decimal(spec.range[1]) if spec.range else None,
                    "delivery_type": spec.delivery_type,
                    "classification": Classification.CLOSED_LOOP
                    if spec.kind == GC
                    else Classification.OPEN_LOOP,
                    "link_type": LinkType.PUBLIC if is_url else "",
                    "bulk_limit": 5 if spec.kind == TOPUP else 10,
                    "discount_percent": Decimal(spec.discount_percent),
                    "fee_fixed": Decimal(spec.fee_fixed),
                    "fee_percent": Decimal(spec.fee_percent),
                    "description": spec.description,
                },
            )
            products[spec.name] = product
        return products

    def _inventory(self, products: dict[str, Product], *, uploaded_by: Any) -> None:
        imported_at = self.start - timedelta(days=5)
        for spec in PRODUCTS:
            if not spec.stock:
                continue
            product = products[spec.name]
            file_name = f"demo-{slugify(spec.brand)}.csv"
            if ImportBatch.objects.filter(product=product, file_name=file_name).exists():
                continue
            total = sum(s.available + s.expiring_soon + s.blocked for s in spec.stock)
            batch = ImportBatch.objects.create(
                product=product,
                uploaded_by=uploaded_by,
                file_name=file_name,
                file_sha256=f"{self.rng.getrandbits(256):064x}",
                status=ImportBatchStatus.IMPORTED,
                row_count=total,
                imported_count=total,
                completed_at=imported_at,
            )
            vouchers: list[Voucher] = []
            for stock in spec.stock:
                denomination = Decimal(stock.denomination)
                for n in range(stock.available + stock.expiring_soon + stock.blocked):
                    if n < stock.expiring_soon:
                        expires = self.now + timedelta(days=self.rng.randint(3, 28))
                    else:
                        expires = self.now + timedelta(days=self.rng.randint(120, 720))
                    voucher = self._voucher(spec, product, denomination, expires_at=expires)
                    voucher.batch = batch
                    voucher.source = VoucherSource.IMPORT
                    if n >= stock.available + stock.expiring_soon:
                        voucher.status = InventoryStatus.BLOCKED
                        voucher.status_reason = "Reported by the brand as already redeemed."
                    vouchers.append(voucher)
            Voucher.objects.bulk_create(vouchers)
            ImportBatch.objects.filter(pk=batch.pk).update(created_at=imported_at)
            Voucher.objects.filter(batch=batch).update(
                created_at=imported_at, updated_at=imported_at
            )

    def _voucher(
        self, spec: ProductSpec, product: Product, denomination: Decimal, *, expires_at: datetime
    ) -> Voucher:
        """An unsaved voucher with fresh secrets (encrypted by the field on save)."""
        digits = "".join(self.rng.choices(string.digits, k=16))
        code = (
            digits
            if spec.delivery_type == PIN
            else "".join(self.rng.choices(string.ascii_uppercase + string.digits, k=16))
        )
        voucher = Voucher(
            product=product,
            denomination=denomination,
            card_number=code,
            card_last4=code[-4:],
            fingerprint=fingerprint(code),
            expires_at=expires_at,
            status=InventoryStatus.AVAILABLE,
        )
        if spec.delivery_type == PIN:
            voucher.pin_code = "".join(self.rng.choices(string.digits, k=4))
        else:
            token = "".join(self.rng.choices(string.ascii_letters + string.digits, k=24))
            voucher.claim_url = f"https://redeem.{slugify(spec.brand)}.example/claim/{token}"
        if self.rng.random() < 0.5:
            voucher.voucher_reference_number = f"REF-{self.rng.randint(10**7, 10**8 - 1)}"
        return voucher

    # --- Clients ------------------------------------------------------------

    def _client(self, spec: ClientSpec) -> tuple[Client, Wallet, ApiCredential]:
        client = Client.objects.filter(name=spec.name).first()
        if client is None:
            client, wallet, issued = client_create(
                name=spec.name,
                currency=spec.currency,
                balance=spec.opening,
                actor=self.system,
                contact_email=spec.email,
            )
            self._backdate_entries(wallet, when=self.start - timedelta(days=1))
            self.lines.append(
                f"{spec.name} ({spec.currency}): new API credential, shown only this once:\n"
                f"  API key:    {issued.credential.public_key}\n"
                f"  API secret: {issued.secret}"
            )
            return client, wallet, issued.credential
        wallet = wallet_open(client=client, currency=spec.currency)
        if not wallet.entries.exists():
            wallet_top_up(
                wallet_id=wallet.pk, amount=spec.opening, actor=self.system, note="Opening balance"
            )
            self._backdate_entries(wallet, when=self.start - timedelta(days=1))
            wallet.refresh_from_db()
        credential = (
            client.credentials.filter(revoked_at__isnull=True).order_by("created_at").first()
        )
        if credential is None:
            issued = credential_issue(client=client, actor=self.system)
            credential = issued.credential
            self.lines.append(
                f"{spec.name} ({spec.currency}): new API credential, shown only this once:\n"
                f"  API key:    {credential.public_key}\n"
                f"  API secret: {issued.secret}"
            )
        else:
            self.lines.append(
                f"{spec.name} ({spec.currency}): credential {credential.public_key} exists; its "
                "secret is not stored. Issue a new one with:\n"
                f'  python manage.py create_client "{spec.name}" --new-credential'
            )
        return client, wallet, credential

    def _backdate_entries(self, wallet: Wallet, *, when: datetime) -> None:
        entries = list(wallet.entries.all())
        for entry in entries:
            entry.created_at = when
        self.backdates.entries.extend(entries)

    # --- Orders -------------------------------------------------------------

    def _plan(self, spec: ClientSpec) -> list[PlannedOrder]:
        # Its own generator, so the plan is the same whatever ran before it.
        rng = random.Random(f"{self.seed}-{spec.prefix}")
        catalog = [p for p in PRODUCTS if p.currency == spec.currency]
        closed = [name for name, count in CLOSED_OUTCOMES.items() for _ in range(count)]
        opened = [name for name, count in OPEN_OUTCOMES.items() for _ in range(count)]
        rng.shuffle(closed)
        rng.shuffle(opened)
        # Closed orders get one slot each with jitter under half a slot, and
        # each lifecycle lasts under three hours, so one client's orders never
        # overlap in time and the ledger reads in order.
        closed_span = (self.now - OPEN_WINDOW - timedelta(hours=4)) - self.start
        slot = closed_span / len(closed)
        open_slot = OPEN_WINDOW / len(opened)
        plans: list[PlannedOrder] = []
        for index, outcome in enumerate(closed + opened):
            if index < len(closed):
                placed = self.start + slot * index + slot * 0.45 * rng.random()
            else:
                base = self.now - OPEN_WINDOW + open_slot * (index - len(closed))
                placed = base + open_slot * 0.5 * rng.random()
            product = rng.choice(catalog)
            if outcome.startswith("partial"):
                quantity = rng.choice([2, 3])
            else:
                quantity = rng.choices([1, 2, 3], weights=[70, 20, 10])[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            customer = (
                f"{first} {last}",
                f"{first}.{last}{rng.randint(1, 99)}@example.com".lower(),
                f"+44 7700 9{rng.randint(10000, 99999)}",
            )
            plans.append(
                PlannedOrder(
                    reference_code=f"{spec.prefix}-{index + 1:05d}",
                    outcome=outcome,
                    placed_at=placed.replace(microsecond=0),
                    product=product,
                    denomination=rng.choice(product.orderable),
                    quantity=quantity,
                    customer=customer,
                )
            )
        return plans

    def _orders(
        self,
        spec: ClientSpec,
        client: Client,
        wallet: Wallet,
        credential: ApiCredential,
        products: dict[str, Product],
    ) -> int:
        plans = self._plan(spec)
        existing = set(
            Order.objects.filter(
                client=client, reference_code__startswith=f"{spec.prefix}-"
            ).values_list("reference_code", flat=True)
        )
        mid_month = self.start + timedelta(days=DAYS / 2)
        top_up_done = wallet.entries.filter(note=MID_MONTH_TOP_UP_NOTE).exists()
        api = Actor.for_credential(credential)
        created = 0
        for plan in sorted(plans, key=lambda p: p.placed_at):
            if not top_up_done and plan.placed_at > mid_month:
                entry = self._mid_month_top_up(wallet, spec, at=plan.placed_at)
                # Just before the next order: the previous one's lifecycle is over.
                entry.created_at = plan.placed_at - timedelta(minutes=1)
                self.backdates.entries.append(entry)
                top_up_done = True
            if plan.reference_code in existing:
                continue
            self._order(plan, client, wallet, credential, products[plan.product.name], api)
            created += 1
        return created

    def _order(
        self,
        plan: PlannedOrder,
        client: Client,
        wallet: Wallet,
        credential: ApiCredential,
        product: Product,
        api: Actor,
    ) -> None:
        # Priced exactly as the API would charge it (the price ignores stock: cache it).
        key = (client.pk, product.pk, plan.denomination, plan.quantity)
        if key not in self.quotes:
            self.quotes[key] = charges_quote(
                client=client,
                product_id=product.pk,
                denomination=str(plan.denomination),
                quantity=plan.quantity,
                wallet_currency=wallet.currency,
            )
        quote = self.quotes[key]
        amount = quote.wallet_amount
        is_topup = product.kind == TOPUP
        order = Order.objects.create(
            client=client,
            credential=credential,
            product=product,
            reference_code=plan.reference_code,
            product_name=product.name,
            product_brand=product.brand,
            product_kind=product.kind,
            delivery_type=product.delivery_type,
            currency=quote.currency,
            denomination=quote.denomination,
            quantity=quote.quantity,
            face_value=quote.face_value,
            discount=quote.discount,
            fees=quote.fees,
            taxes=quote.taxes,
            amount=quote.total,
            wallet=wallet,
            wallet_currency=quote.wallet_currency,
            exchange_rate=quote.exchange_rate,
            wallet_amount=amount,
            customer_name=plan.customer[0],
            customer_email=plan.customer[1],
            customer_phone=plan.customer[2],
            recipient_phone=plan.customer[2].replace(" ", "") if is_topup else "",
            placed_at=plan.placed_at,
        )
        note = f"Order {order.pk} ({order.reference_code})"
        try:
            debit = wallet_debit(
                wallet_id=wallet.pk, amount=amount, actor=api, order=order, note=note
            )
        except InsufficientFunds:
            # Only when someone spent a demo wallet down by hand: refill, carry on.
            wallet_top_up(
                wallet_id=wallet.pk, amount="10000.00", actor=self.system, note="Demo top-up"
            )
            debit = wallet_debit(
                wallet_id=wallet.pk, amount=amount, actor=api, order=order, note=note
            )
        debit.created_at = plan.placed_at
        self.backdates.entries.append(debit)
        order.transaction = debit
        order.save(update_fields=["transaction"])
        # The first row of the timeline and the audit event, as placing writes them.
        StatusChange.objects.create(
            order=order,
            to_status=S.PLACED,
            to_sub_status=U.INITIAL,
            actor_label=api.label,
            note=f"Placed; {amount} {wallet.currency} debited",
            created_at=plan.placed_at,
        )
        audit_record(
            action="order.create",
            actor=api,
            order_id=order.pk,
            data={"reference_code": order.reference_code, "amount": str(order.amount)},
        )

        allocated = (
            self._allocate(product, plan)
            if plan.outcome.startswith("delivered") and not is_topup
            else []
        )
        path = self._path(plan, product, from_inventory=bool(allocated))
        times = self._walk(order, path.steps, start=plan.placed_at)
        final_status = path.steps[-1].status if path.steps else S.PLACED
        delivered_at = next(
            (
                when
                for when, step in zip(times, path.steps, strict=True)
                if step.status in (S.DELIVERED, S.PARTIALLY_DELIVERED)
            ),
            None,
        )
        order.failure_reason = path.failure_reason
        if plan.outcome == "pending_reprocess":
            order.attempts = 2
            order.next_attempt_at = times[-1] + timedelta(minutes=2)
            order.retry_deadline = plan.placed_at + timedelta(
                seconds=settings.FULFILMENT_RETRY_WINDOW_SECONDS
            )
        self._items(plan, order, product, final_status, path.delivered, delivered_at, allocated)

        undelivered = plan.quantity - path.delivered
        refund_due = _cents(amount * undelivered / plan.quantity) if path.refund else Decimal(0)
        when = times[-1] if times else plan.placed_at
        if refund_due and path.refund == "open":
            order.refund_status, order.refund_amount = RefundStatus.NOT_REFUNDED, refund_due
            # Some wait in their failure sub-status, some are marked for finance.
            if final_status != S.CANCELLED and self.rng.random() < 0.5:
                wait = Step(timedelta(minutes=1), final_status, U.NOT_REFUNDED, self.fulfilment,
                            "Refund waiting for finance approval.")  # fmt: skip
                times += self._walk(order, [wait], start=when)
        elif refund_due:
            auto = refund_due <= settings.AUTO_REFUND_LIMIT
            refunder = self.system if auto else self.finance
            when += timedelta(minutes=1 if auto else self.rng.randint(20, 90))
            reason = "Automatic refund of the undelivered value" if auto else "Approved by finance"
            refund = wallet_refund(
                wallet_id=wallet.pk,
                amount=refund_due,
                actor=refunder,
                order=order,
                note=f"Refund of order {order.pk} ({order.reference_code})",
            )
            refund.created_at = when
            self.backdates.entries.append(refund)
            order.refund_status, order.refund_amount = RefundStatus.REFUNDED, refund_due
            order.refund_entry, order.refunded_at = refund, when
            done = Step(timedelta(0), final_status, U.REFUNDED, refunder,
                        f"Refunded {refund_due} {wallet.currency}")  # fmt: skip
            audit_record(
                action="order.refund",
                actor=refunder,
                order_id=order.pk,
                reason=reason,
                data={"amount": str(refund_due), "entry_id": refund.pk},
            )
            times += self._walk(order, [done], start=when)
        order.save(
            update_fields=[
                "failure_reason",
                "attempts",
                "next_attempt_at",
                "retry_deadline",
                "vendor_order_ref",
                "refund_status",
                "refund_amount",
                "refund_entry",
                "refunded_at",
            ]
        )
        order.delivered_at = delivered_at
        order.updated_at = times[-1] if times else plan.placed_at
        self.backdates.orders.append(order)
        self.backdates.timelines[order.pk] = [plan.placed_at, *times]

    def _path(self, plan: PlannedOrder, product: Product, *, from_inventory: bool) -> Path:
        """The legal sequence of states that leads to the planned outcome."""
        rng, bot = self.rng, self.fulfilment
        outcome, quantity = plan.outcome, plan.quantity
        processing = Step(timedelta(seconds=2), S.PENDING, U.PROCESSING, bot)
        vendor = [
            processing,
            Step(timedelta(seconds=3), S.PENDING, U.VENDOR_ORDER_PENDING, bot,
                 "No inventory for this denomination; ordering from the vendor."),
            Step(timedelta(seconds=40), S.PENDING, U.VENDOR_ORDER_CREATED, bot),
        ]  # fmt: skip
        retrying = [
            processing,
            Step(timedelta(seconds=5), S.PENDING, U.PENDING_REPROCESS, bot,
                 "Vendor timed out; retrying."),
        ]  # fmt: skip
        if outcome == "placed":
            return Path([])
        if outcome == "pending_processing":
            return Path(vendor[:1])
        if outcome == "pending_vendor_order_pending":
            return Path(vendor[:2])
        if outcome == "pending_vendor_order_created":
            return Path(vendor)
        if outcome == "pending_reprocess":
            return Path(retrying)
        refund = "open" if outcome.endswith("_open") else "refund"
        if outcome.startswith("failed"):
            if rng.random() < 0.5:
                reason = FAILURES[U.VENDOR_ORDER_FAILED]
                steps = [
                    *vendor[:2],
                    Step(timedelta(minutes=1), S.FAILED, U.VENDOR_ORDER_FAILED, bot, reason),
                ]
            else:
                reason = FAILURES[U.REPROCESS_EXPIRED]
                steps = [
                    *retrying,
                    Step(timedelta(hours=1), S.FAILED, U.REPROCESS_EXPIRED, bot, reason),
                ]
            return Path(steps, failure_reason=reason, refund=refund)
        if outcome.startswith("cancelled"):
            cancel = Step(timedelta(minutes=rng.randint(1, 20)), S.CANCELLED, U.NOT_REFUNDED,
                          self.support, "Cancelled on the client's request.")  # fmt: skip
            steps = [cancel] if rng.random() < 0.5 else [*retrying, cancel]
            return Path(steps, refund=refund)
        if outcome.startswith("partial"):
            delivered = rng.randint(1, quantity - 1)
            partial = Step(timedelta(minutes=5), S.PARTIALLY_DELIVERED, U.VENDOR_ORDER_FAILED, bot,
                           f"Vendor delivered {delivered} of {quantity} units.")  # fmt: skip
            reason = "Vendor ran out of stock part-way through the order."
            return Path([*vendor, partial], delivered, failure_reason=reason, refund=refund)
        # Delivered: from inventory at once, or through the vendor.
        if from_inventory:
            steps = [processing,
                     Step(timedelta(seconds=1), S.DELIVERED, U.INVENTORY_FULFILLED, bot,
                          "Delivered from inventory.")]  # fmt: skip
        elif product.kind == TOPUP:
            steps = [*vendor,
                     Step(timedelta(minutes=2), S.DELIVERED, U.COMPLETED, bot,
                          "Recharge confirmed by the operator.")]  # fmt: skip
        else:
            steps = [*vendor,
                     Step(timedelta(minutes=3), S.PENDING, U.VENDOR_VOUCHER_FETCHED, bot),
                     Step(timedelta(seconds=1), S.DELIVERED, U.VENDOR_VOUCHER_FETCHED, bot,
                          "Delivered from the vendor.")]  # fmt: skip
        if product.delivery_type == URL:
            link = U.GV_LINK_CLAIMED if rng.random() < 0.5 else U.GV_LINK_UNCLAIMED
            steps.append(Step(timedelta(minutes=rng.randint(5, 90)), S.DELIVERED, link, bot))
        if outcome == "delivered_reconciled":
            steps.append(Step(timedelta(minutes=rng.randint(30, 60)), S.DELIVERED, U.RECONCILED,
                              self.finance, "Matched with the vendor statement."))  # fmt: skip
        return Path(steps, quantity)

    def _walk(self, order: Order, steps: list[Step], *, start: datetime) -> list[datetime]:
        """Move the order through `steps`; return the time each step really happened."""
        times, when = [], start
        for step in steps:
            when += step.after
            order_transition(
                order_id=order.pk,
                status=step.status,
                sub_status=step.sub_status,
                actor=step.actor,
                note=step.note,
            )
            times.append(when)
        return times

    def _allocate(self, product: Product, plan: PlannedOrder) -> list[Voucher]:
        """Inventory units for a delivered order, or [] to buy from the vendor."""
        # Leave the units that expire soon in stock: they were imported after
        # these (historical) orders, and inventory admins should see them.
        candidates = list(
            Voucher.objects.filter(
                product=product,
                denomination=plan.denomination,
                status=InventoryStatus.AVAILABLE,
                expires_at__gt=self.now + timedelta(days=DAYS),
            ).order_by("expires_at", "pk")[: plan.quantity]
        )
        # Keep a few units of each stocked denomination for the dashboard.
        remaining = Voucher.objects.filter(
            product=product, denomination=plan.denomination, status=InventoryStatus.AVAILABLE
        ).count()
        if len(candidates) < plan.quantity or remaining - plan.quantity < 4:
            return []
        return candidates

    def _items(
        self,
        plan: PlannedOrder,
        order: Order,
        product: Product,
        final_status: OrderStatus,
        delivered: int,
        delivered_at: datetime | None,
        allocated: list[Voucher],
    ) -> None:
        spec, is_topup = plan.product, product.kind == TOPUP
        if delivered and not is_topup and not allocated:
            bought = [
                self._voucher(
                    spec,
                    product,
                    plan.denomination,
                    expires_at=plan.placed_at + timedelta(days=365),
                )
                for _ in range(delivered)
            ]
            for voucher in bought:
                voucher.source, voucher.vendor = VoucherSource.VENDOR, self.vendor
                voucher.status = InventoryStatus.DELIVERED
                voucher.allocated_at = voucher.delivered_at = delivered_at
            allocated = Voucher.objects.bulk_create(bought)
            for voucher in allocated:
                voucher.created_at = voucher.updated_at = delivered_at or plan.placed_at
            self.backdates.vouchers.extend(allocated)
        elif allocated:
            Voucher.objects.filter(pk__in=[v.pk for v in allocated]).update(
                status=InventoryStatus.DELIVERED,
                allocated_at=delivered_at,
                delivered_at=delivered_at,
                updated_at=delivered_at,
            )

        rest = {
            OrderStatus.FAILED: ItemStatus.FAILED,
            OrderStatus.PARTIALLY_DELIVERED: ItemStatus.FAILED,
            OrderStatus.CANCELLED: ItemStatus.CANCELLED,
        }
        rest_recharge = {
            ItemStatus.FAILED: RechargeStatus.FAILED,
            ItemStatus.CANCELLED: RechargeStatus.CANCELLED,
            ItemStatus.PENDING: RechargeStatus.PENDING,
        }
        items = []
        for position in range(1, plan.quantity + 1):
            if position <= delivered:
                items.append(
                    OrderItem(
                        order=order,
                        position=position,
                        status=ItemStatus.DELIVERED,
                        voucher=None if is_topup else allocated[position - 1],
                        recharge_status=RechargeStatus.RECHARGED if is_topup else "",
                        vendor_ref=order.vendor_order_ref,
                        delivered_at=delivered_at,
                    )
                )
            else:
                status = rest.get(final_status, ItemStatus.PENDING)
                items.append(
                    OrderItem(
                        order=order,
                        position=position,
                        status=status,
                        recharge_status=rest_recharge[status] if is_topup else "",
                        failure_reason=order.failure_reason,
                    )
                )
        OrderItem.objects.bulk_create(items)

    # --- Backdating and summary ----------------------------------------------

    def _apply_backdates(self) -> None:
        b = self.backdates
        Order.objects.bulk_update(
            b.orders, ["placed_at", "delivered_at", "updated_at"], batch_size=500
        )
        WalletEntry.objects.bulk_update(b.entries, ["created_at"], batch_size=500)
        Voucher.objects.bulk_update(b.vouchers, ["created_at", "updated_at"], batch_size=500)
        changes = StatusChange.objects.filter(order_id__in=list(b.timelines)).order_by(
            "order_id", "id"
        )
        by_order: dict[int, list[StatusChange]] = {}
        for change in changes.only("pk", "order_id", "created_at"):
            by_order.setdefault(change.order_id, []).append(change)
        for order_id, rows in by_order.items():
            for change, when in zip(rows, b.timelines[order_id], strict=True):
                change.created_at = when
        dated = [change for rows in by_order.values() for change in rows]
        StatusChange.objects.bulk_update(dated, ["created_at"], batch_size=500)

    def _summary(self, created_orders: int) -> None:
        demo = Q()
        for spec in CLIENTS:
            demo |= Q(client__name=spec.name, reference_code__startswith=f"{spec.prefix}-")
        orders = Order.objects.filter(demo)
        available = Voucher.objects.filter(status=InventoryStatus.AVAILABLE).count()
        self.stdout.write("\n".join(self.lines))
        self.stdout.write(
            f"Vendor: {self.vendor.code}. Products: {Product.objects.count()}, "
            f"vouchers in stock: {available}.\n"
            f"Demo orders: {orders.count()} ({created_orders} created by this run).\n"
            "Dashboard: /dashboard/   Admin: /admin/"
        )


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
