"""Fill the benchmark database with a realistic data set, fast (COPY).

    .venv/bin/python bench/generate.py [--orders 1000000] [--seed 7]
    make bench-data ORDERS=100000

Replaces every row of the app's tables in `BENCH_DATABASE_URL` (default
postgres://postgres@127.0.0.1:5432/bench; created and migrated when missing)
with:

- 50 clients, each with a USD, EUR and GBP wallet;
- 200 products from 3 vendors: gift cards (code + PIN), digital services
  (redemption URL) and mobile top-ups, in USD, EUR and GBP;
- `--orders` orders spread over 180 days (busier on weekdays and in the
  afternoon), 1-3 units each, with the status mix of a healthy platform:
  mostly DELIVERED, a few FAILED, CANCELLED and PARTIALLY_DELIVERED (refunded,
  or left for finance when recent), and the last minutes' orders still open;
- one voucher per delivered unit, encrypted for real with the app's keyring
  (AES-256-GCM) and fingerprinted, plus AVAILABLE stock per denomination;
- each order's timeline, and a ledger (top-ups, debits, refunds) whose sums
  match every wallet's balance, so `manage.py check_ledger` passes.

Rows go in by COPY with the foreign keys and secondary indexes dropped and
rebuilt afterwards (what pg_restore does), then ANALYZE. Prints rows/s.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BULK_LIMIT,
    BULK_PRODUCT_NAME,
    database_url,
    ensure_database,
    setup_django,
)
from orders.rules import cents, holds_stock, is_refundable, prorata

DAYS = 180
CLIENTS = 50
PRODUCTS = 200
CURRENCIES = ("USD", "EUR", "GBP")
FIRST = [
    "ada",
    "grace",
    "alan",
    "linus",
    "margaret",
    "katherine",
    "tim",
    "barbara",
    "ken",
    "edsger",
]
LAST = ["lovelace", "hopper", "turing", "hamilton", "johnson", "liskov", "ritchie", "knuth"]
# Share of closed orders by outcome (per mille).
OUTCOMES = [
    ("delivered", 860),
    ("delivered_reconciled", 40),
    ("failed", 40),
    ("cancelled", 30),
    ("partial", 30),
]
# The product of the bulk-order benchmark (bench/run.py, group "bulk"): bulk limit
# 10,000 and at least that many vouchers in stock. It takes no part in the
# generated orders, and its rows come after everything else (own random
# stream), so the rest of the data set is the same as without it.
BULK_DENOMINATION = 10_00  # cents
BULK_STOCK = 10_000
OPEN_MINUTES = 10  # orders placed this recently are still PLACED/PENDING
REFUND_OPEN_DAYS = 7  # undelivered value younger than this waits for finance
CHUNK = 20_000  # orders per COPY round


# --- Text COPY helpers -----------------------------------------------------------

NULL = "\\N"


def money(value: int) -> str:
    """Integer cents as COPY text, two decimals ("-12.50"): the generator counts in
    integer cents for speed and rounds with orders.rules where a rule rounds."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    return f"{sign}{value // 100}.{value % 100:02d}"


def in_cents(amount: Decimal) -> int:
    return int(amount.scaleb(2))


def of_cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def ts(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class Table:
    """Rows of one table, buffered as COPY text."""

    def __init__(self, name: str, columns: list[str]) -> None:
        self.name, self.columns = name, columns
        self.lines: list[str] = []
        self.count = 0

    def add(self, *values: object) -> None:
        self.lines.append("\t".join(NULL if v is None else str(v) for v in values))

    def flush(self, cursor) -> None:
        if not self.lines:
            return
        sql = f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN"
        with cursor.copy(sql) as copy:
            copy.write("\n".join(self.lines) + "\n")
        self.count += len(self.lines)
        self.lines.clear()


# --- The data set ----------------------------------------------------------------


class Generator:
    def __init__(self, *, orders: int, seed: int, now: float) -> None:
        from orders.crypto import keyring
        from orders.models import Voucher
        from orders.services.inventory import voucher_fingerprint

        self.rng = random.Random(seed)
        self.orders = orders
        self.now = now
        self.start = now - DAYS * 86400
        self.keyring = keyring()
        self.voucher_fingerprint = voucher_fingerprint
        self.aad = {
            name: Voucher._meta.get_field(name).aad  # type: ignore[union-attr]
            for name in ("card_number", "pin_code", "claim_url")
        }
        self.ids = {"voucher": 0, "item": 0, "entry": 0, "change": 0, "batch": 0}
        self.products: list[dict] = []
        self.wallets: dict[tuple[int, str], dict] = {}
        self.tables = self._tables()

    def next_id(self, kind: str) -> int:
        self.ids[kind] += 1
        return self.ids[kind]

    def _tables(self) -> dict[str, Table]:
        """COPY buffers; each row is added with every column, in the model's order."""
        from orders.models import Order, OrderItem, StatusChange, Voucher, WalletEntry

        models = {
            "voucher": Voucher,
            "order": Order,
            "item": OrderItem,
            "entry": WalletEntry,
            "change": StatusChange,
        }
        return {
            name: Table(model._meta.db_table, [f.column for f in model._meta.concrete_fields])
            for name, model in models.items()
        }

    # Reference data, through the ORM: small.

    def reference_data(self) -> None:
        from orders.models import Client, ImportBatch, Product, Vendor, Wallet

        rng = self.rng
        vendors = [Vendor.objects.create(code=f"vendor-{n}", name=f"Vendor {n}") for n in (1, 2, 3)]
        kinds = (
            [("GIFT_CARD", "CODE_WITH_PIN")] * 150
            + [("DIGITAL_SERVICE", "URL")] * 20
            + [("MOBILE_TOPUP", "CODE_WITH_PIN")] * 30
        )
        rng.shuffle(kinds)
        brands = ["Amazon", "Apple", "Steam", "Spotify", "Netflix", "Uber", "Zalando", "IKEA"]
        ladders = [
            ["10.00", "25.00", "50.00", "100.00"],
            ["5.00", "15.00", "30.00"],
            ["20.00", "50.00"],
            ["25.00", "50.00", "75.00", "150.00"],
        ]
        products = []
        for n, (kind, delivery) in enumerate(kinds, start=1):
            currency = rng.choices(CURRENCIES, weights=(60, 25, 15))[0]
            brand = rng.choice(brands)
            products.append(
                Product(
                    vendor=vendors[n % 3],
                    name=f"{brand} {kind.replace('_', ' ').title()} {currency} #{n:03d}",
                    brand=brand,
                    kind=kind,
                    currency=currency,
                    denominations=rng.choice(ladders),
                    delivery_type=delivery,
                    discount_percent=rng.choice(["0", "1.5", "2", "3", "5"]),
                    low_stock_threshold=rng.choice([10, 20, 50]),
                )
            )
        Product.objects.bulk_create(products)
        batches = ImportBatch.objects.bulk_create(
            ImportBatch(
                product=p,
                file_name=f"stock-{p.pk}.csv",
                file_sha256=hashlib.sha256(str(p.pk).encode()).hexdigest(),
                status="IMPORTED",
            )
            for p in products
            if holds_stock(p.kind)
        )
        batch_of = {b.product_id: b.pk for b in batches}
        for p in products:
            self.products.append(
                {
                    "id": p.pk,
                    "name": p.name,
                    "brand": p.brand,
                    "kind": p.kind,
                    "delivery": p.delivery_type,
                    "currency": p.currency,
                    "denoms": [int(Decimal(d) * 100) for d in p.denominations],
                    "discount_percent": Decimal(p.discount_percent),
                    "vendor": p.vendor_id,
                    "batch": batch_of.get(p.pk),
                    "weight": rng.paretovariate(1.2),  # a few best sellers
                }
            )
        clients = Client.objects.bulk_create(
            Client(name=f"Bench Client {n:02d}", contact_email=f"ops{n}@client{n}.example")
            for n in range(1, CLIENTS + 1)
        )
        wallets = Wallet.objects.bulk_create(
            Wallet(client=c, currency=cur) for c in clients for cur in CURRENCIES
        )
        for w in wallets:
            self.wallets[(w.client_id, w.currency)] = {"id": w.pk, "balance": 0}
        self.clients = [c.pk for c in clients]
        self.client_weights = [rng.paretovariate(1.5) for _ in clients]
        self.bulk_product = self._bulk_product(vendors[0])

    def _bulk_product(self, vendor) -> dict:
        """The bulk-order product; not in self.products, so no generated order buys it."""
        from orders.models import ImportBatch, Product

        denomination = of_cents(BULK_DENOMINATION)
        product = Product.objects.create(
            vendor=vendor,
            name=BULK_PRODUCT_NAME,
            brand="Bench",
            kind="GIFT_CARD",
            currency="USD",
            denominations=[str(denomination)],
            delivery_type="CODE_WITH_PIN",
            low_stock_threshold=10,
        )
        # A queryset update: the bulk limit's upper bound is a rule of the API and
        # the catalogue forms, and this is the benchmark's own product.
        Product.objects.filter(pk=product.pk).update(bulk_limit=BULK_LIMIT)
        batch = ImportBatch.objects.create(
            product=product,
            file_name=f"stock-{product.pk}.csv",
            file_sha256=hashlib.sha256(str(product.pk).encode()).hexdigest(),
            status="IMPORTED",
        )
        return {
            "id": product.pk,
            "kind": product.kind,
            "delivery": product.delivery_type,
            "vendor": vendor.pk,
            "batch": batch.pk,
        }

    def bulk_stock(self, seed: int) -> int:
        """BULK_STOCK AVAILABLE vouchers of the bulk product, from their own random stream."""
        self.rng = random.Random(seed + 1)
        for _ in range(BULK_STOCK):
            self.voucher(
                self.bulk_product,
                BULK_DENOMINATION,
                status="AVAILABLE",
                at=self.now,
                source="IMPORT",
            )
        return BULK_STOCK

    # Secrets.

    def seal(self, field: str, plaintext: str) -> str:
        return self.keyring.seal(plaintext, aad=self.aad[field]).ciphertext

    def voucher(self, product: dict, denom: int, *, status: str, at: float, source: str) -> int:
        vid = self.next_id("voucher")
        rng = self.rng
        if product["delivery"] == "URL":
            url = f"https://redeem.example/{product['id']}/{vid}-{rng.getrandbits(64):016x}"
            card = pin = None
            claim = self.seal("claim_url", url)
            last4 = ""
            fp = self.voucher_fingerprint(delivery_type="URL", claim_url=url)
        else:
            number = f"{product['id']:03d}{vid:09d}{rng.getrandbits(32):010d}"
            card = self.seal("card_number", number)
            pin = self.seal("pin_code", f"{rng.randrange(10**6):06d}")
            claim = None
            last4 = number[-4:]
            fp = self.voucher_fingerprint(delivery_type="CODE_WITH_PIN", card_number=number)
        expires = ts(at + 365 * 86400)
        delivered = ts(at) if status == "DELIVERED" else None
        self.tables["voucher"].add(
            vid,
            product["id"],
            money(denom),
            card,
            pin,
            None,
            claim,
            last4,
            fp,
            expires,
            status,
            "",
            source,
            product["batch"] if source == "IMPORT" else None,
            product["vendor"] if source == "VENDOR" else None,
            ts(at - 3600),
            ts(at),
            delivered,
            delivered,
        )
        return vid

    def stock(self) -> int:
        """AVAILABLE vouchers per gift-card/URL denomination: some plenty, some low."""
        count = 0
        now = self.now
        for product in self.products:
            if not holds_stock(product["kind"]):
                continue
            for denom in product["denoms"]:
                for _ in range(self.rng.choice([0, 5, 40, 120, 300])):
                    self.voucher(product, denom, status="AVAILABLE", at=now, source="IMPORT")
                    count += 1
        return count

    # Money.

    def entry(
        self, wallet: dict, kind: str, amount: int, at: float, order_id: int | None, note: str
    ) -> int:
        wallet["balance"] += amount
        eid = self.next_id("entry")
        self.tables["entry"].add(
            eid,
            wallet["id"],
            kind,
            money(amount),
            money(wallet["balance"]),
            order_id,
            note,
            None,
            "system" if kind != "TOP_UP" else "finance:bench",
            ts(at),
        )
        return eid

    def change(self, order_id: int, frm: tuple[str, str], to: tuple[str, str], at: float) -> None:
        self.tables["change"].add(
            self.next_id("change"),
            order_id,
            frm[0],
            frm[1],
            to[0],
            to[1],
            None,
            "worker",
            "",
            ts(at),
        )

    # Orders.

    def placed_times(self) -> list[float]:
        """Order times over DAYS: weekday/afternoon heavier, sorted (ids grow with time)."""
        rng = self.rng
        hours = [0.3] * 7 + [0.8, 1.2, 1.5, 1.6, 1.6, 1.5, 1.6, 1.8, 1.9, 1.8, 1.5, 1.2, 1.0]
        hours += [0.8, 0.6, 0.5, 0.4]
        slots, weights = [], []
        for day in range(DAYS):
            weekday = (int(self.start // 86400) + day + 3) % 7  # 0 = Monday
            growth = 0.7 + 0.6 * day / DAYS
            for hour, w in enumerate(hours):
                slots.append(self.start + day * 86400 + hour * 3600)
                weights.append(w * growth * (0.6 if weekday >= 5 else 1.0))
        picks = rng.choices(slots, weights=weights, k=self.orders)
        times = sorted(t + rng.random() * 3600 for t in picks)
        # Keep everything in the past, the newest a few seconds ago.
        shift = max(0.0, times[-1] - (self.now - 5))
        return [t - shift for t in times]

    def orders_rows(self, cursor, report) -> None:
        rng = self.rng
        products = self.products
        product_weights = [p["weight"] for p in products]
        outcome_names = [o for o, _ in OUTCOMES]
        outcome_weights = [w for _, w in OUTCOMES]
        times = self.placed_times()
        oid = 0
        for base in range(0, self.orders, CHUNK):
            chunk_times = times[base : base + CHUNK]
            clients = rng.choices(self.clients, weights=self.client_weights, k=len(chunk_times))
            picks = rng.choices(products, weights=product_weights, k=len(chunk_times))
            outcomes = rng.choices(outcome_names, weights=outcome_weights, k=len(chunk_times))
            for placed, client, product, outcome in zip(
                chunk_times, clients, picks, outcomes, strict=True
            ):
                oid += 1
                self.order(oid, placed, client, product, outcome)
            for name in ("voucher", "entry", "order", "item", "change"):
                self.tables[name].flush(cursor)
            report(oid)

    def order(self, oid: int, placed: float, client: int, product: dict, outcome: str) -> None:
        rng = self.rng
        denom = rng.choice(product["denoms"])
        quantity = rng.choices((1, 2, 3), weights=(60, 25, 15))[0]
        if outcome == "partial" and quantity == 1:
            quantity = 2
        face = denom * quantity
        # As pricing charges it: face value × discount percent, half-up to the cent.
        discount = in_cents(cents(of_cents(face) * product["discount_percent"] / 100))
        amount = face - discount
        wallet = self.wallets[(client, product["currency"])]
        is_open = placed > self.now - OPEN_MINUTES * 60
        # Clients top up when the wallet runs low.
        if wallet["balance"] < amount:
            top_up = max(amount, rng.choice([50_000_00, 100_000_00, 250_000_00]))
            self.entry(wallet, "TOP_UP", top_up, placed - 60, None, "Bank transfer")
        debit = self.entry(wallet, "ORDER_DEBIT", -amount, placed, oid, "")
        first, last = rng.choice(FIRST), rng.choice(LAST)
        n = rng.randrange(20_000)
        email = f"{first}.{last}{n}@mail.example"
        phone = f"+1555{rng.randrange(10**7):07d}"
        topup = not holds_stock(product["kind"])
        from_inventory = not topup and rng.random() < 0.55
        step = (
            ("PENDING", "INVENTORY_FULFILLED")
            if from_inventory
            else ("PENDING", "VENDOR_ORDER_CREATED")
        )
        self.change(oid, ("", ""), ("PLACED", "INITIAL"), placed)
        delivered_units, status, sub, reason = quantity, "DELIVERED", "", ""
        done = placed + rng.uniform(0.3, 4.0) + (0 if from_inventory else rng.uniform(1, 60))
        if is_open:
            status, sub = rng.choice(
                [("PLACED", "INITIAL"), ("PENDING", "PROCESSING"), ("PENDING", "PENDING_REPROCESS")]
            )
            delivered_units, done = 0, placed
        elif outcome in ("delivered", "delivered_reconciled"):
            if from_inventory:
                sub = "INVENTORY_FULFILLED"
            elif topup:
                sub = "COMPLETED"
            elif product["delivery"] == "URL":
                sub = rng.choice(["GV_LINK_CLAIMED", "GV_LINK_UNCLAIMED"])
            else:
                sub = "VENDOR_VOUCHER_FETCHED"
            if outcome == "delivered_reconciled":
                sub = "RECONCILED"
        elif outcome == "failed":
            status, delivered_units = "FAILED", 0
            sub = rng.choice(["VENDOR_ORDER_FAILED", "REPROCESS_EXPIRED"])
            reason = (
                "Vendor rejected the order."
                if sub == "VENDOR_ORDER_FAILED"
                else ("Vendor did not answer before the retry window closed.")
            )
        elif outcome == "cancelled":
            status, sub, delivered_units = "CANCELLED", "NOT_REFUNDED", 0
            reason = "Cancelled on the client's request."
        else:
            status, sub = "PARTIALLY_DELIVERED", "VENDOR_ORDER_FAILED"
            delivered_units = rng.randint(1, quantity - 1)
            reason = "Vendor ran out of stock part-way through the order."
        if not is_open:
            self.change(oid, ("PLACED", "INITIAL"), step, placed + 0.2)
            self.change(oid, step, (status, sub), done)
        # Refund of the undelivered value.
        refund_status, refund_amount, refunded_at, refund_entry = "NONE", 0, None, None
        undelivered = quantity - delivered_units
        if is_refundable(status) and undelivered:
            refund_amount = in_cents(
                prorata(charged=of_cents(amount), undelivered=undelivered, quantity=quantity)
            )
            if placed > self.now - REFUND_OPEN_DAYS * 86400 and rng.random() < 0.5:
                refund_status = "NOT_REFUNDED"
                if status != "CANCELLED":
                    self.change(oid, (status, sub), (status, "NOT_REFUNDED"), done + 60)
                    sub = "NOT_REFUNDED"
            else:
                refund_status = "REFUNDED"
                refunded = done + rng.uniform(60, 86400)
                refunded_at = ts(min(refunded, self.now))
                refund_entry = self.entry(
                    wallet, "REFUND", refund_amount, refunded, oid, "Undelivered value"
                )
                self.change(oid, (status, sub), (status, "REFUNDED"), refunded)
                sub = "REFUNDED"
        # Units.
        item_status_rest = {"FAILED": "FAILED", "CANCELLED": "CANCELLED"}.get(
            status, "FAILED" if status == "PARTIALLY_DELIVERED" else "PENDING"
        )
        for position in range(1, quantity + 1):
            delivered = position <= delivered_units
            voucher_id = None
            if delivered and not topup:
                voucher_id = self.voucher(
                    product,
                    denom,
                    status="DELIVERED",
                    at=done,
                    source="IMPORT" if from_inventory else "VENDOR",
                )
            self.tables["item"].add(
                self.next_id("item"),
                oid,
                position,
                "DELIVERED" if delivered else item_status_rest,
                voucher_id,
                ("RECHARGED" if delivered else "FAILED") if topup else "",
                f"V{oid}-{position}" if delivered and not from_inventory else "",
                "" if delivered else reason,
                ts(done) if delivered else None,
                ts(done),
            )
        self.tables["order"].add(
            oid,
            client,
            None,
            product["id"],
            f"bench-{oid:08d}",
            "",
            debit,
            product["name"],
            product["brand"],
            product["kind"],
            product["delivery"],
            product["currency"],
            money(denom),
            quantity,
            money(face),
            money(discount),
            "0.00",
            "0.00",
            money(amount),
            wallet["id"],
            product["currency"],
            "1",
            money(amount),
            "WALLET",
            status,
            sub,
            reason,
            f"{first.title()} {last.title()}",
            email,
            phone,
            phone if topup else "",
            ts(placed),
            ts(done),
            ts(done) if delivered_units else None,
            1 if not is_open else 0,
            None,  # next_attempt_at
            None,  # leased_until
            None,  # retry_deadline
            "" if from_inventory or is_open else f"VO-{oid}",
            refund_status,
            money(refund_amount),
            refunded_at,
            refund_entry,
        )


# --- Schema juggling: drop FKs and secondary indexes, rebuild after --------------

TABLES = [
    "orders_order",
    "orders_orderitem",
    "orders_voucher",
    "orders_walletentry",
    "orders_statuschange",
]


def drop_constraints(cursor) -> list[str]:
    """Drop foreign keys touching the bulk tables and their non-unique indexes;
    return the statements that rebuild them."""
    rebuild: list[str] = []
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'f'
          AND (c.conrelid::regclass::text = ANY(%s) OR c.confrelid::regclass::text = ANY(%s))
        """,
        [TABLES, TABLES],
    )
    fks = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.tablename, i.indexname, i.indexdef
        FROM pg_indexes i
        JOIN pg_class ic ON ic.relname = i.indexname
        JOIN pg_index x ON x.indexrelid = ic.oid
        WHERE i.tablename = ANY(%s) AND NOT x.indisunique AND NOT x.indisprimary
        """,
        [TABLES],
    )
    indexes = cursor.fetchall()
    for table, name, _ in fks:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for _, name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    rebuild += [definition + ";" for _, _, definition in indexes]
    rebuild += [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d};' for t, n, d in fks]
    return rebuild


def reset_sequences(cursor, tables: Iterable[str]) -> None:
    for table in tables:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.orders < 1:
        parser.error("--orders must be at least 1")

    url = database_url()
    ensure_database(url)
    setup_django(url)
    from django.apps import apps
    from django.conf import settings as django_settings
    from django.core.management import call_command
    from django.db import connection, transaction

    from orders.services.wallets import ledger_mismatches

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    app_tables = [m._meta.db_table for m in apps.get_app_config("orders").get_models()]
    task_tables = [
        m._meta.db_table
        for m in apps.get_models()
        if m._meta.app_label in ("django_tasks_database", "django_tasks_db")
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        # A deliberate wipe of the bench database, as its owner: the audit trail's
        # trigger refuses TRUNCATE, so it is disabled inside this transaction only,
        # and the bench's own checkpoints of the old trail are discarded with it.
        cursor.execute(
            "ALTER TABLE orders_auditevent DISABLE TRIGGER orders_auditevent_no_truncate"
        )
        cursor.execute(f"TRUNCATE {', '.join(app_tables + task_tables)} RESTART IDENTITY CASCADE")
        cursor.execute("ALTER TABLE orders_auditevent ENABLE TRIGGER orders_auditevent_no_truncate")
    Path(django_settings.AUDIT_CHECKPOINT_PATH).unlink(missing_ok=True)
    print(f"bench database: {connection.settings_dict['NAME']}, {args.orders:,} orders")

    gen = Generator(orders=args.orders, seed=args.seed, now=time.time())
    with transaction.atomic():
        gen.reference_data()
    t_copy = time.perf_counter()

    def report(done: int) -> None:
        if done % 100_000 < CHUNK or done == args.orders:
            elapsed = time.perf_counter() - t_copy
            print(f"  {done:>9,} orders  {elapsed:6.1f} s  {done / elapsed:8,.0f} orders/s")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        rebuild = drop_constraints(cursor)
        stock = gen.stock()
        gen.orders_rows(cursor, report)
        stock += gen.bulk_stock(args.seed)
        for name in ("voucher", "entry", "order", "item", "change"):
            gen.tables[name].flush(cursor)
        loaded = time.perf_counter()
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        for statement in rebuild:
            cursor.execute(statement)
        reset_sequences(cursor, TABLES)
        for wallet in gen.wallets.values():
            cursor.execute(
                "UPDATE orders_wallet SET balance = %s WHERE id = %s",
                [money(wallet["balance"]), wallet["id"]],
            )
        rebuilt = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    finished = time.perf_counter()
    from orders.services.rollups import rollups_refresh

    rollup_rows = rollups_refresh(full=True)
    rolled = time.perf_counter()

    rows = sum(t.count for t in gen.tables.values())
    copy_seconds = loaded - t_copy
    print(
        f"rows: {rows:,} ("
        + ", ".join(f"{t.name.removeprefix('orders_')} {t.count:,}" for t in gen.tables.values())
        + f"; {stock:,} vouchers in stock)"
    )
    print(
        f"generate + COPY {copy_seconds:.1f} s ({rows / copy_seconds:,.0f} rows/s, "
        f"{args.orders / copy_seconds:,.0f} orders/s); indexes and keys {rebuilt - loaded:.1f} s; "
        f"VACUUM ANALYZE {finished - rebuilt:.1f} s; dashboard rollups {rolled - finished:.1f} s "
        f"({rollup_rows:,} rows); total {rolled - started:.1f} s"
    )
    mismatches = ledger_mismatches()
    print(
        "ledger: "
        + (
            "every wallet matches its entries"
            if not mismatches
            else f"{len(mismatches)} mismatches"
        )
    )
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
