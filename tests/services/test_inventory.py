"""Inventory: CSV import (all rows or none, duplicates by fingerprint), block and
revoke rules, and the stock overview the inventory admin works from."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import IO, cast

import pytest
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from orders.crypto import reset_keyring
from orders.enums import DeliveryType, ImportBatchStatus, InventoryStatus, VoucherSource
from orders.errors import (
    Conflict,
    InventoryConflict,
    NotFound,
    ValidationFailed,
    VoucherImportRejected,
)
from orders.models import AuditEvent, ImportBatch, Voucher
from orders.selectors.inventory import allocatable_vouchers, expiring_vouchers, stock_overview
from orders.services.import_file import CSV_COLUMNS
from orders.services.imports import voucher_import_commit, voucher_import_validate
from orders.services.inventory import (
    batch_quarantine,
    batch_revoke,
    voucher_block,
    voucher_revoke,
    voucher_unblock,
)
from orders.services.rollups import rollups_refresh
from tests.factories import ProductFactory, VoucherFactory
from tests.helpers.keys import TEST_FINGERPRINT_KEY, TEST_KEY_2

pytestmark = pytest.mark.django_db

HEADER = ",".join(CSV_COLUMNS)


def row(
    card: str = "GC-0000-0001",
    pin: str = "1234",
    reference: str = "",
    url: str = "",
    expires: str = "2099-12-31",
    denomination: str = "25.00",
) -> str:
    return ",".join([card, pin, reference, url, expires, denomination])


def csv_file(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def codes(n: int, *, prefix: str = "GC", denomination: str = "25.00") -> list[str]:
    return [
        row(card=f"{prefix}-{i:08d}", pin=f"{i % 10000:04d}", denomination=denomination)
        for i in range(n)
    ]


def validate(product, text: str, actor, name: str = "codes.csv"):
    return voucher_import_validate(
        product_id=product.pk, stream=io.StringIO(text, newline=""), file_name=name, actor=actor
    )


def commit(batch_id: int, text: str, actor, progress=None) -> ImportBatch:
    return voucher_import_commit(
        batch_id=batch_id, stream=io.StringIO(text, newline=""), actor=actor, progress=progress
    )


def import_file(product, text: str, actor) -> ImportBatch:
    preview = validate(product, text, actor)
    assert preview.is_valid, preview.errors
    return commit(preview.batch_id, text, actor)


def raw_secret_columns() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT card_number, pin_code, voucher_reference_number, claim_url FROM orders_voucher"
        )
        return cursor.fetchall()


@pytest.fixture
def product():
    return ProductFactory(denominations=["10.00", "25.00", "50.00"], low_stock_threshold=5)


@pytest.fixture
def url_product():
    return ProductFactory(delivery_type=DeliveryType.URL, denominations=["20.00"])


# --- Validation ----------------------------------------------------------------


def test_validate_previews_counts_per_denomination_and_writes_no_voucher(product, system_actor):
    text = csv_file(*codes(3, denomination="10.00"), *codes(2, prefix="XB", denomination="50"))

    preview = validate(product, text, system_actor)

    assert preview.is_valid
    assert (preview.row_count, preview.valid_count, preview.error_count) == (5, 5, 0)
    assert preview.denominations == {Decimal("10.00"): 3, Decimal("50.00"): 2}
    assert preview.file_sha256 == hashlib.sha256(text.encode()).hexdigest()
    batch = ImportBatch.objects.get(pk=preview.batch_id)
    assert batch.status == ImportBatchStatus.VALIDATING
    assert (batch.row_count, batch.error_count, batch.file_name) == (5, 0, "codes.csv")
    assert batch.file_sha256 == preview.file_sha256
    assert Voucher.objects.count() == 0


BAD_ROWS = [
    (row(card=""), "card_number is required"),
    (row(card="GC_0001!"), "card_number must be 4-64"),
    (row(card="12"), "card_number must be 4-64"),
    (row(card="9" * 65), "card_number must be 4-64"),
    (row(pin=""), "pin_code is required"),
    (row(pin="12"), "pin_code must be 3-16"),
    (row(pin="12-34"), "pin_code must be 3-16"),
    (row(denomination=""), "denomination is required"),
    (row(denomination="30.00"), "denomination 30.00 is not offered"),
    (row(denomination="25.001"), "at most two decimals"),
    (row(denomination="$25"), "at most two decimals"),
    (row(expires="2001-01-01"), "expires_at is in the past"),
    (row(expires="31/12/2099"), "expires_at must be an ISO 8601"),
    (row(expires="2099-13-01"), "expires_at must be an ISO 8601"),
    (row(url="http://example.com/x"), "claim_url must be a valid https:// URL"),
    (row() + ",extra", "has 7 cells; the header has 6"),
    ("GC-0000-0001,1234", "has 2 cells; the header has 6"),
]


@pytest.mark.parametrize(("bad_row", "reason"), BAD_ROWS)
def test_each_kind_of_bad_row_is_reported_by_row_number_and_nothing_imports(
    product, system_actor, bad_row, reason
):
    good = codes(2, prefix="OK")
    text = csv_file(good[0], bad_row, good[1])

    preview = validate(product, text, system_actor)

    assert not preview.is_valid
    assert preview.error_count == 1
    assert [e.row for e in preview.errors] == [3]  # header is row 1
    assert reason in preview.errors[0].reason
    assert ImportBatch.objects.get(pk=preview.batch_id).status == ImportBatchStatus.INVALID
    with pytest.raises(InventoryConflict):
        commit(preview.batch_id, text, system_actor)
    assert Voucher.objects.count() == 0


def test_row_errors_never_contain_the_cell_values(product, system_actor):
    secret_card, secret_pin = "SECRETCARD-777", "PIN!!SECRET"
    text = csv_file(row(card=secret_card, pin=secret_pin, expires="yesterday"))

    preview = validate(product, text, system_actor)

    shown = json.dumps([e.as_dict() for e in preview.errors])
    note = ImportBatch.objects.get(pk=preview.batch_id).note
    for secret in (secret_card, secret_pin, "yesterday"):
        assert secret not in shown and secret not in note
    assert "pin_code must be 3-16" in shown


def test_url_product_rows_need_an_https_claim_url(url_product, system_actor):
    text = csv_file(
        row(card="", pin="", url="https://claim.example.com/v/AbC-1", denomination="20"),
        row(card="", pin="", url="", denomination="20"),
        row(card="", pin="", url="ftp://claim.example.com/v/2", denomination="20"),
    )

    preview = validate(url_product, text, system_actor)

    assert [(e.row, e.reason) for e in preview.errors] == [
        (3, "claim_url is required"),
        (4, "claim_url must be a valid https:// URL"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        (HEADER + "\n", "header row but no voucher rows"),
        (csv_file(row(), header=HEADER.replace(",claim_url", "")), "missing column(s): claim_url"),
        (csv_file(row() + ",x", header=HEADER + ",notes"), "unexpected column(s): notes"),
        (csv_file(row(), header=HEADER.replace("pin_code", "card_number")), "repeated column"),
        ("SECRET-CARD-1,9999,,,2099-12-31,25\n", "The first row must be the header row"),
    ],
)
def test_a_wrong_header_or_empty_file_is_a_clear_file_level_error(
    product, system_actor, text, message
):
    preview = validate(product, text, system_actor)

    assert not preview.is_valid
    assert message in preview.file_error
    batch = ImportBatch.objects.get(pk=preview.batch_id)
    assert batch.status == ImportBatchStatus.INVALID
    assert message in batch.note
    assert "SECRET" not in batch.note and "9999" not in preview.file_error


def test_header_in_any_order_and_case_with_byte_order_mark_is_accepted(product, system_actor):
    header = (
        "\ufeffDenomination, Expires_At,card_number,pin_code,claim_url,voucher_reference_number"
    )
    text = "\n".join([header, "25,2099-01-31,GC-1111-2222,9876,,REF 1"]) + "\n"

    batch = import_file(product, text, system_actor)

    voucher = Voucher.objects.get(batch=batch)
    assert voucher.denomination == Decimal("25.00")
    assert voucher.expires_at == datetime(2099, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)


def test_blank_lines_are_skipped_but_row_numbers_match_the_spreadsheet(product, system_actor):
    text = csv_file(row(card="GC-1"), "", ",,,,,", row(card="GC-0002"))

    preview = validate(product, text, system_actor)

    assert preview.row_count == 2
    assert [(e.row, e.reason) for e in preview.errors] == [
        (2, "card_number must be 4-64 letters, digits, dashes or spaces")
    ]


def test_errors_are_capped_at_200_shown_with_the_total_counted(product, system_actor):
    text = csv_file(*[row(card=f"GC-{i:06d}", pin="x") for i in range(450)])

    preview = validate(product, text, system_actor)

    assert preview.error_count == 450
    assert len(preview.errors) == 200
    assert [e.row for e in preview.errors] == list(range(2, 202))


# --- Duplicates ------------------------------------------------------------------


def test_duplicates_inside_the_file_are_found_however_the_code_is_written(product, system_actor):
    text = csv_file(
        row(card="4111-2222-3333"),
        row(card="GC-0000-0002"),
        row(card="4111 2222 3333"),
        row(card="41112222333 3"),
    )

    preview = validate(product, text, system_actor)

    assert [(e.row, e.reason) for e in preview.errors] == [
        (4, "same code as row 2"),
        (5, "same code as row 2"),
    ]


def test_duplicates_against_stock_are_found_by_fingerprint_without_decrypting(
    product, system_actor, settings
):
    VoucherFactory(product=product, card_number="GC-5555-0001")
    VoucherFactory(product=ProductFactory(), card_number="GC-5555-0002")  # other product: fine
    # Drop the key the stored vouchers were encrypted with: any decryption would
    # now fail, so finding the duplicate proves it used only the fingerprint.
    settings.VOUCHER_KEYS = f"k2:{TEST_KEY_2}"
    settings.VOUCHER_FINGERPRINT_KEY = TEST_FINGERPRINT_KEY
    reset_keyring()
    text = csv_file(row(card="gc 5555 0001"), row(card="GC-5555-0002"))

    preview = validate(product, text, system_actor)

    assert [(e.row, e.reason) for e in preview.errors] == [
        (2, "this code is already in this product's inventory")
    ]
    assert all(value.startswith("enc:v1:k1:") for value, *_ in raw_secret_columns())


def test_url_codes_differing_only_in_case_are_different_codes(url_product, system_actor):
    text = csv_file(
        row(card="", pin="", url="https://claim.example.com/v/AbCd-1", denomination="20"),
        row(card="", pin="", url="https://claim.example.com/v/abcd1", denomination="20"),
        row(card="", pin="", url="HTTPS://CLAIM.example.com/v/AbCd-1", denomination="20"),
    )

    preview = validate(url_product, text, system_actor)

    assert [(e.row, e.reason) for e in preview.errors] == [(4, "same code as row 2")]


# --- Commit ----------------------------------------------------------------------


def test_one_bad_row_imports_nothing_and_the_fixed_file_imports_everything(product, system_actor):
    rows = codes(30)
    broken = csv_file(*rows[:17], row(card="GC-BAD", pin="1", denomination="25"), *rows[17:])
    fixed = csv_file(*rows)
    assert allocatable_vouchers(product_id=product.pk, denomination=Decimal("25")).count() == 0

    preview = validate(product, broken, system_actor)
    assert [e.row for e in preview.errors] == [19]
    with pytest.raises(InventoryConflict):
        commit(preview.batch_id, broken, system_actor)
    assert Voucher.objects.count() == 0

    batch = import_file(product, fixed, system_actor)

    assert batch.status == ImportBatchStatus.IMPORTED
    assert batch.imported_count == 30 and batch.completed_at is not None
    assert allocatable_vouchers(product_id=product.pk, denomination=Decimal("25")).count() == 30


def test_imported_vouchers_carry_everything_and_the_database_only_ciphertext(product, system_actor):
    text = csv_file(
        row(card="4000 1234 5678 9010", pin="A1B2", reference="REF-XYZ-77", expires=""),
        row(
            card="GC-0000-0002", pin="4321", expires="2099-06-01T12:30:00+02:00", denomination="10"
        ),
    )

    batch = import_file(product, text, system_actor)

    first, second = Voucher.objects.filter(batch=batch).order_by("denomination", "id")
    assert (second.card_last4, second.denomination, second.expires_at) == (
        "9010",
        Decimal("25.00"),
        None,
    )
    assert first.expires_at == datetime(2099, 6, 1, 10, 30, tzinfo=UTC)
    assert {v.status for v in (first, second)} == {InventoryStatus.AVAILABLE}
    assert {v.source for v in (first, second)} == {VoucherSource.IMPORT}
    assert str(first.card_number) == "••••"  # loaded values stay sealed
    raw = raw_secret_columns()
    flat = [value for values in raw for value in values if value is not None]
    assert len(flat) == 5 and all(value.startswith("enc:v1:") for value in flat)
    for plaintext in ("4000 1234 5678 9010", "40001234", "A1B2", "REF-XYZ-77", "GC-0000-0002"):
        assert not any(plaintext in value for value in flat)


def test_commit_is_audited_once_with_counts_and_no_secret(product, system_actor):
    text = csv_file(*codes(3), row(card="GC-SECRET-99", pin="7777", denomination="50"))

    batch = import_file(product, text, system_actor)

    event = AuditEvent.objects.get(action="voucher.import")
    assert event.data["batch_id"] == batch.pk
    assert (event.data["row_count"], event.data["imported_count"]) == (4, 4)
    assert event.data["denominations"] == {"25.00": 3, "50.00": 1}
    stored = json.dumps(event.data) + event.reason
    assert "GC-SECRET-99" not in stored and "7777" not in stored


def test_commit_reports_progress_per_chunk(product, system_actor):
    text = csv_file(*codes(2500))
    preview = validate(product, text, system_actor)
    seen: list[int] = []

    commit(preview.batch_id, text, system_actor, progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == 2500 and len(seen) == 3


def test_a_different_file_than_the_validated_one_is_refused(product, system_actor):
    validated = csv_file(*codes(3))
    swapped = csv_file(*codes(3, prefix="ZZ"))
    preview = validate(product, validated, system_actor)

    with pytest.raises(Conflict, match="differs from the one validated"):
        commit(preview.batch_id, swapped, system_actor)

    assert Voucher.objects.count() == 0
    assert ImportBatch.objects.get(pk=preview.batch_id).status == ImportBatchStatus.VALIDATING
    assert commit(preview.batch_id, validated, system_actor).imported_count == 3


def test_codes_stocked_between_validate_and_commit_reject_the_whole_file(product, system_actor):
    text = csv_file(*codes(5))
    preview = validate(product, text, system_actor)
    VoucherFactory(product=product, card_number="GC-00000003")

    with pytest.raises(VoucherImportRejected) as rejected:
        commit(preview.batch_id, text, system_actor)

    assert rejected.value.errors == [
        {"row": 5, "reason": "this code is already in this product's inventory"}
    ]
    assert Voucher.objects.filter(product=product).count() == 1
    batch = ImportBatch.objects.get(pk=preview.batch_id)
    assert (batch.status, batch.imported_count, batch.error_count) == (
        ImportBatchStatus.INVALID,
        0,
        1,
    )
    assert "row 5" in batch.note


def test_a_batch_imports_once(product, system_actor):
    text = csv_file(*codes(4))
    preview = validate(product, text, system_actor)
    commit(preview.batch_id, text, system_actor)

    with pytest.raises(InventoryConflict):
        commit(preview.batch_id, text, system_actor)

    assert Voucher.objects.count() == 4


def test_url_product_import_fingerprints_the_url_and_masks_nothing(url_product, system_actor):
    text = csv_file(
        row(card="", pin="", url="https://claim.example.com/v/AbCd-1", denomination="20")
    )

    batch = import_file(url_product, text, system_actor)

    voucher = Voucher.objects.get(batch=batch)
    assert voucher.card_last4 == "" and voucher.card_number is None
    assert voucher.claim_url is not None and len(voucher.fingerprint) == 64


def test_unknown_product_or_batch_is_not_found(system_actor):
    with pytest.raises(NotFound):
        validate(type("P", (), {"pk": 999_999})(), csv_file(row()), system_actor)
    with pytest.raises(NotFound):
        commit(999_999, csv_file(row()), system_actor)


class _LinesOnly:
    """A text stream that can only be iterated: reading it whole fails the test."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[str]:
        return self._lines

    def read(self, size: int = -1) -> str:
        raise AssertionError("the import read the whole file at once")

    def readlines(self, hint: int = -1) -> list[str]:
        raise AssertionError("the import read the whole file at once")


def _generated(n: int) -> Iterator[str]:
    yield HEADER + "\n"
    for i in range(n):
        yield row(card=f"BM-{i:010d}", pin=f"{i % 10**6:06d}") + "\n"


def test_a_2000_row_file_imports_streaming_in_bounded_memory(product, system_actor):
    tracemalloc.start()
    try:
        preview = voucher_import_validate(
            product_id=product.pk,
            stream=cast(IO[str], _LinesOnly(_generated(2000))),
            file_name="big.csv",
            actor=system_actor,
        )
        batch = voucher_import_commit(
            batch_id=preview.batch_id,
            stream=cast(IO[str], _LinesOnly(_generated(2000))),
            actor=system_actor,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert batch.imported_count == 2000
    # Two 1,000-row chunks of model instances plus 2,000 fingerprints: well under 16 MB.
    assert peak < 16 * 1024 * 1024


# --- Block, unblock, revoke --------------------------------------------------------


def test_block_then_unblock_returns_a_voucher_to_stock_with_both_audited(system_actor):
    voucher = VoucherFactory()

    voucher_block(voucher_id=voucher.pk, actor=system_actor, reason="reported stolen")
    voucher.refresh_from_db()
    assert (voucher.status, voucher.status_reason) == (InventoryStatus.BLOCKED, "reported stolen")
    assert not allocatable_vouchers(product_id=voucher.product_id, denomination=Decimal("25"))

    voucher_unblock(voucher_id=voucher.pk, actor=system_actor, reason="false alarm")
    voucher.refresh_from_db()
    assert voucher.status == InventoryStatus.AVAILABLE
    events = AuditEvent.objects.filter(voucher_id=voucher.pk).order_by("created_at", "id")
    assert [(e.action, e.reason, e.data["voucher_id"]) for e in events] == [
        ("voucher.block", "reported stolen", voucher.pk),
        ("voucher.unblock", "false alarm", voucher.pk),
    ]


def test_a_revoked_voucher_never_returns_to_available(system_actor):
    voucher = VoucherFactory()
    voucher_block(voucher_id=voucher.pk, actor=system_actor, reason="check")
    voucher_revoke(voucher_id=voucher.pk, actor=system_actor, reason="vendor voided it")

    for action in (voucher_unblock, voucher_block, voucher_revoke):
        with pytest.raises(InventoryConflict, match="revoked"):
            action(voucher_id=voucher.pk, actor=system_actor, reason="try again")

    voucher.refresh_from_db()
    assert voucher.status == InventoryStatus.REVOKED


@pytest.mark.parametrize(
    "status", [InventoryStatus.ALLOCATED, InventoryStatus.DELIVERED, InventoryStatus.COMPLETED]
)
def test_allocated_or_delivered_vouchers_cannot_be_blocked_or_revoked(system_actor, status):
    voucher = VoucherFactory(status=status)

    for action in (voucher_block, voucher_revoke):
        with pytest.raises(InventoryConflict, match="to an order"):
            action(voucher_id=voucher.pk, actor=system_actor, reason="suspicious")

    voucher.refresh_from_db()
    assert voucher.status == status
    assert not AuditEvent.objects.filter(voucher_id=voucher.pk).exists()


def test_an_expired_blocked_voucher_cannot_be_unblocked(system_actor):
    voucher = VoucherFactory(status=InventoryStatus.BLOCKED)
    Voucher.objects.filter(pk=voucher.pk).update(expires_at=timezone.now() - timedelta(days=1))

    with pytest.raises(InventoryConflict, match="expired"):
        voucher_unblock(voucher_id=voucher.pk, actor=system_actor, reason="ok now")


def test_a_reason_is_required(system_actor):
    voucher = VoucherFactory()

    with pytest.raises(ValidationFailed) as missing:
        voucher_block(voucher_id=voucher.pk, actor=system_actor, reason="   ")

    assert missing.value.field == "reason"
    voucher.refresh_from_db()
    assert voucher.status == InventoryStatus.AVAILABLE


def test_quarantine_blocks_a_batch_available_units_and_revoke_ends_them(product, system_actor):
    batch = import_file(product, csv_file(*codes(4)), system_actor)
    allocated = Voucher.objects.filter(batch=batch).order_by("id").first()
    assert allocated is not None
    Voucher.objects.filter(pk=allocated.pk).update(status=InventoryStatus.ALLOCATED)

    batch_quarantine(batch_id=batch.pk, actor=system_actor, reason="supplier breach")

    batch.refresh_from_db()
    assert batch.status == ImportBatchStatus.QUARANTINED
    statuses = sorted(Voucher.objects.filter(batch=batch).values_list("status", flat=True))
    assert statuses == ["ALLOCATED", "BLOCKED", "BLOCKED", "BLOCKED"]
    assert AuditEvent.objects.get(action="batch.quarantine").data["blocked_count"] == 3

    batch_revoke(batch_id=batch.pk, actor=system_actor, reason="supplier confirmed breach")

    statuses = sorted(Voucher.objects.filter(batch=batch).values_list("status", flat=True))
    assert statuses == ["ALLOCATED", "REVOKED", "REVOKED", "REVOKED"]
    assert AuditEvent.objects.get(action="batch.revoke").data["revoked_count"] == 3


def test_an_invalid_batch_cannot_be_quarantined(product, system_actor):
    preview = validate(product, csv_file(row(pin="")), system_actor)

    with pytest.raises(InventoryConflict):
        batch_quarantine(batch_id=preview.batch_id, actor=system_actor, reason="x")


# --- Stock overview and expiry -------------------------------------------------------


@pytest.mark.parametrize("source", ["raw rows", "rollups"])
def test_stock_overview_counts_every_status_per_product_and_denomination(
    product, django_assert_num_queries, source
):
    now = timezone.now()
    VoucherFactory.create_batch(3, product=product, expires_at=now + timedelta(days=90))
    VoucherFactory(product=product, expires_at=now + timedelta(days=10))
    VoucherFactory(product=product, expires_at=None)
    VoucherFactory(product=product, expires_at=now - timedelta(days=1))  # expired, still AVAILABLE
    VoucherFactory(product=product, status=InventoryStatus.ALLOCATED)
    VoucherFactory.create_batch(
        7,
        product=product,
        status=InventoryStatus.DELIVERED,
        delivered_at=now - timedelta(days=2),
    )
    VoucherFactory(
        product=product, status=InventoryStatus.DELIVERED, delivered_at=now - timedelta(days=30)
    )
    VoucherFactory(product=product, status=InventoryStatus.BLOCKED)
    VoucherFactory.create_batch(2, product=product, status=InventoryStatus.REVOKED)
    VoucherFactory(product=product, denomination=Decimal("50.00"))

    if source == "rollups":
        rollups_refresh()
    # The rollups' state; then one grouped count query over every voucher, or two
    # over the rollups; one for the products.
    with django_assert_num_queries(3 if source == "raw rows" else 4):
        rows = {(r.product_id, r.denomination): r for r in stock_overview()}

    row25 = rows[(product.pk, Decimal("25.00"))]
    assert (
        row25.available,
        row25.expired,
        row25.allocated,
        row25.delivered,
        row25.blocked,
        row25.revoked,
    ) == (5, 1, 1, 8, 1, 2)
    assert row25.next_expiry is not None
    assert abs(row25.next_expiry - (now + timedelta(days=10))) < timedelta(seconds=5)
    assert row25.sold_7d == 7 and row25.days_of_cover == Decimal("5.0")
    assert row25.low_stock is False
    row50 = rows[(product.pk, Decimal("50.00"))]
    assert (row50.available, row50.sold_7d, row50.days_of_cover, row50.low_stock) == (
        1,
        0,
        None,
        True,
    )
    empty = rows[(product.pk, Decimal("10.00"))]  # listed but never stocked: shown as empty
    assert (empty.available, empty.low_stock) == (0, True)


def test_expiring_vouchers_lists_available_units_soonest_first_without_secrets(
    product, django_assert_num_queries
):
    now = timezone.now()
    soon = VoucherFactory(product=product, expires_at=now + timedelta(days=3))
    sooner = VoucherFactory(product=product, expires_at=now + timedelta(days=1))
    VoucherFactory(product=product, expires_at=now + timedelta(days=60))
    VoucherFactory(product=product, expires_at=None)
    VoucherFactory(
        product=product, status=InventoryStatus.BLOCKED, expires_at=now + timedelta(days=2)
    )

    with django_assert_num_queries(1):
        found = list(expiring_vouchers(within_days=7))
        names = [v.product.name for v in found]

    assert [v.pk for v in found] == [sooner.pk, soon.pk]
    assert names == [product.name] * 2
    assert {"card_number", "pin_code", "voucher_reference_number", "claim_url"} <= (
        found[0].get_deferred_fields()
    )


# --- PostgreSQL: concurrency -----------------------------------------------------------


def _wait_for_lock_waiter(deadline_s: float = 10.0) -> None:
    """Return once another session of this database waits on a row/index lock."""
    end = datetime.now(UTC) + timedelta(seconds=deadline_s)
    with connections["default"].cursor() as cursor:
        while datetime.now(UTC) < end:
            # Inside a transaction pg_stat_activity is a snapshot taken at first read.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
    raise AssertionError("no session started waiting for the lock before the deadline")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_overlapping_codes_never_duplicate(product, system_actor):
    first_text = csv_file(*codes(50))
    second_text = csv_file(*codes(50, prefix="NEW"), *codes(10))  # 10 codes overlap
    first = validate(product, first_text, system_actor)
    second = validate(product, second_text, system_actor)
    assert first.is_valid and second.is_valid
    first_inserted = threading.Event()
    outcome: dict[str, object] = {}

    def hold_until_second_waits(rows_done: int) -> None:
        # Runs inside the first import's transaction, after its rows are inserted.
        first_inserted.set()
        _wait_for_lock_waiter()

    def run_second() -> None:
        try:
            assert first_inserted.wait(timeout=10)
            commit(second.batch_id, second_text, system_actor)
        except VoucherImportRejected as exc:
            outcome["second"] = exc
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=run_second)
    thread.start()
    try:
        commit(first.batch_id, first_text, system_actor, progress=hold_until_second_waits)
    finally:
        thread.join(timeout=30)

    rejected = outcome.get("second")
    assert isinstance(rejected, VoucherImportRejected)
    assert "at the same time" in rejected.message
    assert Voucher.objects.filter(product=product).count() == 50
    assert not Voucher.objects.filter(batch_id=second.batch_id).exists()
    assert ImportBatch.objects.get(pk=second.batch_id).status == ImportBatchStatus.INVALID


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_block_waits_for_an_allocation_in_progress_and_then_refuses(system_actor):
    from django.db import transaction

    voucher = VoucherFactory()
    outcome: dict[str, object] = {}

    def block() -> None:
        try:
            voucher_block(voucher_id=voucher.pk, actor=system_actor, reason="suspicious")
        except InventoryConflict as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        # What fulfilment does: lock an AVAILABLE unit, skipping locked ones.
        allocated = (
            allocatable_vouchers(product_id=voucher.product_id, denomination=Decimal("25"))
            .select_for_update(skip_locked=True)
            .first()
        )
        assert allocated is not None and allocated.pk == voucher.pk
        thread = threading.Thread(target=block)
        thread.start()
        _wait_for_lock_waiter()
        Voucher.objects.filter(pk=voucher.pk).update(status=InventoryStatus.ALLOCATED)
    thread.join(timeout=30)

    assert isinstance(outcome.get("error"), InventoryConflict)
    voucher.refresh_from_db()
    assert voucher.status == InventoryStatus.ALLOCATED
