"""Inventory pages: stock, CSV import with preview, vouchers and batches; every role."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.enums import ImportBatchStatus, InventoryStatus
from orders.models import AuditEvent, ImportBatch, ImportUpload, ImportUploadChunk, Voucher
from tests.factories import ProductFactory, VoucherFactory

pytestmark = pytest.mark.django_db

OK, REDIRECT, FORBIDDEN = 200, 302, 403
ROLES = ["support", "finance", "inventory", "admin"]
CARD_NUMBER = "6011000099990042"
HEADER = "card_number,pin_code,voucher_reference_number,claim_url,expires_at,denomination\n"
NEXT_YEAR = (timezone.now() + timedelta(days=365)).date().isoformat()


@pytest.fixture
def stock(db):
    """A product with one AVAILABLE voucher of a known card number, in a batch."""
    product: Any = ProductFactory(name="Comet Music", low_stock_threshold=5)
    batch = ImportBatch.objects.create(
        product=product,
        file_name="first.csv",
        file_sha256="0" * 64,
        status=ImportBatchStatus.IMPORTED,
        row_count=1,
        imported_count=1,
    )
    voucher = VoucherFactory(
        product=product,
        card_number=CARD_NUMBER,
        card_last4=CARD_NUMBER[-4:],
        batch=batch,
        expires_at=timezone.now() + timedelta(days=5),
    )
    return product, batch, voucher


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


def _upload(client: Client, product, content: bytes, name: str = "codes.csv"):
    return client.post(
        reverse("dashboard:inventory_import"),
        {"product": product.pk, "file": SimpleUploadedFile(name, content, "text/csv")},
    )


def _available(product) -> int:
    return Voucher.objects.filter(product=product, status=InventoryStatus.AVAILABLE).count()


# --- Who may open what -----------------------------------------------------------

# (name, method, expected status per role in ROLES order)
MATRIX = [
    ("inventory_stock", "get", [FORBIDDEN, FORBIDDEN, OK, OK]),
    ("inventory_import", "get", [FORBIDDEN, FORBIDDEN, OK, OK]),
    ("inventory_import", "post", [FORBIDDEN, FORBIDDEN, REDIRECT, REDIRECT]),
    ("inventory_import_preview", "get", [FORBIDDEN, FORBIDDEN, OK, OK]),
    ("inventory_import_commit", "post", [FORBIDDEN, FORBIDDEN, REDIRECT, REDIRECT]),
    ("inventory_vouchers", "get", [FORBIDDEN, FORBIDDEN, OK, OK]),
    ("inventory_voucher_action", "post", [FORBIDDEN, FORBIDDEN, REDIRECT, REDIRECT]),
    ("inventory_batches", "get", [FORBIDDEN, FORBIDDEN, OK, OK]),
    ("inventory_batch_action", "post", [FORBIDDEN, FORBIDDEN, REDIRECT, REDIRECT]),
]


def _url(name: str, batch, voucher) -> str:
    if name in ("inventory_import_preview", "inventory_import_commit"):
        return reverse(f"dashboard:{name}", args=[batch.pk])
    if name == "inventory_voucher_action":
        return reverse(f"dashboard:{name}", args=[voucher.pk, "block"])
    if name == "inventory_batch_action":
        return reverse(f"dashboard:{name}", args=[batch.pk, "quarantine"])
    return reverse(f"dashboard:{name}")


def _call(client: Client, name: str, method: str, url: str, product):
    if method == "get":
        return client.get(url)
    if name == "inventory_import":
        data = {"product": product.pk, "file": SimpleUploadedFile("m.csv", _csv(), "text/csv")}
        return client.post(url, data)
    return client.post(url, {"reason": "matrix"})


@pytest.mark.parametrize(
    ("name", "method", "expected"), MATRIX, ids=[f"{m[0]}-{m[1]}" for m in MATRIX]
)
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(as_role, stock, name, method, expected, role):
    product, batch, voucher = stock
    response = _call(as_role(role), name, method, _url(name, batch, voucher), product)
    assert response.status_code == expected[ROLES.index(role)], response.content[:500]


@pytest.mark.parametrize(
    ("name", "method", "_expected"), MATRIX, ids=[f"{m[0]}-{m[1]}" for m in MATRIX]
)
def test_anonymous_is_sent_to_login(as_role, stock, name, method, _expected):
    _product, batch, voucher = stock
    response = getattr(as_role(None), method)(_url(name, batch, voucher))
    assert response.status_code == REDIRECT
    assert response["Location"].startswith(reverse("login"))
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.AVAILABLE


def test_navigation_shows_inventory_only_to_roles_that_may_open_it(as_role, stock):
    url = reverse("dashboard:inventory_stock")
    assert url.encode() in as_role("inventory").get(reverse("dashboard:overview")).content
    assert url.encode() not in as_role("support").get(reverse("dashboard:overview")).content


# --- Plain and htmx pages, never a secret -------------------------------------------

PAGES = ["inventory_stock", "inventory_import", "inventory_vouchers", "inventory_batches"]
PARTIAL_IDS = {
    "inventory_stock": 'id="stock-body"',
    "inventory_import": 'id="import-form"',
    "inventory_vouchers": 'id="voucher-results"',
    "inventory_batches": 'id="batch-results"',
}


@pytest.mark.parametrize("name", PAGES)
def test_page_plain_and_htmx(as_role, stock, name):
    client = as_role("inventory")
    page = client.get(reverse(f"dashboard:{name}"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html and PARTIAL_IDS[name] in html
    fragment = client.get(reverse(f"dashboard:{name}"), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    part = fragment.content.decode()
    assert "<html" not in part and PARTIAL_IDS[name] in part


def test_preview_plain_and_htmx(as_role, stock):
    _product, batch, _voucher = stock
    client = as_role("inventory")
    url = reverse("dashboard:inventory_import_preview", args=[batch.pk])
    assert "<html" in client.get(url).content.decode()
    part = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in part and 'id="preview"' in part


@pytest.mark.parametrize("name", [*PAGES, "inventory_import_preview"])
def test_no_page_shows_a_plaintext_code(as_role, stock, name):
    _product, batch, _voucher = stock
    args = [batch.pk] if name == "inventory_import_preview" else []
    html = as_role("admin").get(reverse(f"dashboard:{name}", args=args)).content.decode()
    assert CARD_NUMBER not in html
    if name == "inventory_vouchers":
        assert "•••• 0042" in html


# --- Stock --------------------------------------------------------------------------


def test_stock_counts_next_expiry_and_low_stock(as_role, stock):
    product, _batch, _voucher = stock
    VoucherFactory(product=product, status=InventoryStatus.BLOCKED)
    VoucherFactory(product=product, status=InventoryStatus.REVOKED)
    html = as_role("inventory").get(reverse("dashboard:inventory_stock")).content.decode()
    row = re.search(rf'<tr id="stock-{product.pk}-2500"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None
    assert 'data-available="1"' in html
    assert "Low stock" in row.group(1)
    assert "<time" in row.group(1)  # next expiry
    low = html.split('id="low-title"')[1].split("</section>")[0]
    assert "Comet Music" in low and "1 available" in low


# --- Import -------------------------------------------------------------------------


def test_upload_with_a_bad_row_shows_row_and_reason_and_imports_nothing(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    before = _available(product)
    content = _csv(
        f"5105105105105100,1234,,,{NEXT_YEAR},25", f"4000000000000002,9999,,,{NEXT_YEAR},33"
    )
    response = _upload(client, product, content)
    assert response.status_code == 302
    preview = client.get(response["Location"])
    html = preview.content.decode()
    errors = html.split('class="table compact import-errors"')[1]
    assert re.search(r'<td class="num">3</td><td>[^<]*denomination', errors), errors[:800]
    assert "Nothing will be imported" in html
    assert "Import 1 voucher" not in html
    assert "5105105105105100" not in html and "4000000000000002" not in html
    assert _available(product) == before
    batch = ImportBatch.objects.latest("id")
    assert batch.status == ImportBatchStatus.INVALID
    assert not ImportUploadChunk.objects.filter(upload_id=batch.pk).exists()  # no codes kept
    commit = client.post(reverse("dashboard:inventory_import_commit", args=[batch.pk]))
    assert commit.status_code == 302
    assert _available(product) == before


def test_valid_upload_previews_then_imports_and_stock_grows(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    before = _available(product)
    content = (
        "\ufeff"
        + HEADER
        + (
            f"5105105105105100,1234,,,{NEXT_YEAR},25\n"
            f"4000000000000002,9999,,,{NEXT_YEAR},25\n"
            f"4000000000000010,4321,,,,10\n"
        )
    )
    response = _upload(client, product, content.encode())
    assert response.status_code == 302
    batch = ImportBatch.objects.latest("id")
    assert ImportUpload.objects.filter(batch=batch, complete=True).exists()
    with connection.cursor() as cursor:  # kept encrypted: no code, no PIN in the column
        cursor.execute("SELECT text FROM orders_importuploadchunk WHERE upload_id = %s", [batch.pk])
        stored = "".join(row[0] for row in cursor.fetchall())
    assert stored.startswith("enc:v1:") and "5105105105105100" not in stored
    html = client.get(response["Location"]).content.decode()
    assert "Ready to import 3 vouchers into Comet Music" in html
    assert re.search(r"25\.00 USD</td><td class=\"num\">2<", html)
    assert _available(product) == before
    done = client.post(reverse("dashboard:inventory_import_commit", args=[batch.pk]), follow=True)
    assert done.redirect_chain[-1][0] == reverse("dashboard:inventory_stock")
    page = done.content.decode()
    assert "Imported 3 vouchers into Comet Music" in page
    assert f'<tr id="stock-{product.pk}-2500" data-available="{before + 2}">' in page
    assert _available(product) == before + 3
    assert not ImportUpload.objects.filter(batch_id=batch.pk).exists()  # imported: forgotten
    assert "5105105105105100" not in page


def test_upload_form_errors(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    response = client.post(reverse("dashboard:inventory_import"), {"product": product.pk})
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()
    response = _upload(client, product, b"x", name="codes.xlsx")
    assert response.status_code == 422
    assert "Upload a .csv file." in response.content.decode()


def test_upload_that_is_not_utf8_reports_the_file_error(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    response = _upload(client, product, HEADER.encode() + b"\xff\xfe,1,2,3\n")
    html = client.get(response["Location"]).content.decode()
    assert "not UTF-8" in html


# --- Vouchers -------------------------------------------------------------------------


def test_voucher_filters(as_role, stock):
    product, batch, voucher = stock
    other: Any = VoucherFactory(
        status=InventoryStatus.BLOCKED, expires_at=timezone.now() + timedelta(days=200)
    )
    client = as_role("inventory")
    url = reverse("dashboard:inventory_vouchers")

    def ids(**params):
        html = client.get(url, params).content.decode()
        return {int(pk) for pk in re.findall(r'id="voucher-row-(\d+)"', html)}

    assert ids() == {voucher.pk, other.pk}
    assert ids(product=product.pk) == {voucher.pk}
    assert ids(status="BLOCKED") == {other.pk}
    assert ids(batch=batch.pk) == {voucher.pk}
    assert ids(expiring_within=30) == {voucher.pk}
    refused = client.get(url, {"expiring_within": -1})
    assert refused.status_code == 400
    assert "Some filters could not be used" in refused.content.decode()


def test_voucher_list_keyset_pages(as_role, stock, settings):
    from orders.dashboard import inventory

    product, _batch, _first = stock
    more: list[Any] = [VoucherFactory(product=product) for _ in range(inventory.PAGE_SIZE)]
    client = as_role("inventory")
    html = client.get(reverse("dashboard:inventory_vouchers")).content.decode()
    assert len(re.findall(r'id="voucher-row-', html)) == inventory.PAGE_SIZE
    after = re.search(r'rel="next" href="\?after=(\d+)"', html)
    assert after is not None
    page2 = client.get(reverse("dashboard:inventory_vouchers"), {"after": after.group(1)})
    assert re.findall(r'id="voucher-row-(\d+)"', page2.content.decode()) == [str(more[-1].pk)]


def test_block_and_revoke_need_a_reason(as_role, stock):
    _product, _batch, voucher = stock
    client = as_role("inventory")
    url = reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "block"])
    response = client.post(url, {"reason": "  "}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "Give a reason to confirm." in response.content.decode()
    response = client.post(url, {}, follow=True)
    assert "Give a reason to confirm." in response.content.decode()
    revoke = reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "revoke"])
    assert client.post(revoke, {}, HTTP_HX_REQUEST="true").status_code == 422
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.AVAILABLE
    assert not AuditEvent.objects.filter(action__startswith="voucher.").exists()


def test_block_with_htmx_swaps_the_row_then_unblock_then_revoke_without_htmx(as_role, stock):
    _product, _batch, voucher = stock
    client = as_role("inventory")
    block = reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "block"])
    row = client.post(block, {"reason": "customer dispute"}, HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    html = row.content.decode()
    assert html.strip().startswith(f'<tr id="voucher-row-{voucher.pk}"')
    assert 'data-status="BLOCKED"' in html and "customer dispute" in html
    assert "Unblock" in html and CARD_NUMBER not in html
    unblock = reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "unblock"])
    response = client.post(unblock, {"reason": "resolved"})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:inventory_vouchers")
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.AVAILABLE
    revoke = reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "revoke"])
    page = client.post(revoke, {"reason": "leaked"}, follow=True).content.decode()
    assert f"Revoke voucher {voucher.pk}: done." in page
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.REVOKED
    assert AuditEvent.objects.filter(action="voucher.revoke", voucher_id=voucher.pk).exists()


def test_refused_action_shows_the_service_message(as_role, stock):
    _product, _batch, voucher = stock
    delivered: Any = VoucherFactory(status=InventoryStatus.DELIVERED)
    client = as_role("inventory")
    url = reverse("dashboard:inventory_voucher_action", args=[delivered.pk, "block"])
    response = client.post(url, {"reason": "try"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "cannot be blocked" in response.content.decode()
    assert (
        client.post(
            reverse("dashboard:inventory_voucher_action", args=[voucher.pk, "explode"]),
            {"reason": "x"},
        ).status_code
        == 404
    )


# --- Batches ----------------------------------------------------------------------------


def test_batch_quarantine_then_revoke(as_role, stock):
    _product, batch, voucher = stock
    client = as_role("inventory")
    quarantine = reverse("dashboard:inventory_batch_action", args=[batch.pk, "quarantine"])
    assert client.post(quarantine, {}, HTTP_HX_REQUEST="true").status_code == 422
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.AVAILABLE
    row = client.post(quarantine, {"reason": "supplier recall"}, HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert 'data-status="QUARANTINED"' in row.content.decode()
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.BLOCKED
    revoke = reverse("dashboard:inventory_batch_action", args=[batch.pk, "revoke"])
    page = client.post(revoke, {"reason": "confirmed leak"}, follow=True).content.decode()
    assert f"Revoke batch {batch.pk}: done." in page
    assert Voucher.objects.get(pk=voucher.pk).status == InventoryStatus.REVOKED


def test_upload_spooled_to_disk_imports_too(as_role, stock, settings):
    """A file above FILE_UPLOAD_MAX_MEMORY_SIZE arrives as a temporary file, not in memory."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    product, _batch, _voucher = stock
    client = as_role("inventory")
    before = _available(product)
    response = _upload(client, product, _csv(f"5105105105105100,1234,,,{NEXT_YEAR},50"))
    batch = ImportBatch.objects.latest("id")
    assert "Ready to import 1 voucher into" in client.get(response["Location"]).content.decode()
    client.post(reverse("dashboard:inventory_import_commit", args=[batch.pk]))
    assert _available(product) == before + 1
    preview = client.get(reverse("dashboard:inventory_import_preview", args=[batch.pk]))
    assert "This file was imported: 1 voucher" in preview.content.decode()


def test_oversized_upload_is_refused_before_validation(as_role, stock, monkeypatch):
    from orders.dashboard import inventory

    monkeypatch.setattr(inventory, "MAX_UPLOAD_BYTES", 10)
    product, _batch, _voucher = stock
    count = ImportBatch.objects.count()
    response = _upload(as_role("inventory"), product, _csv("5105105105105100,1234,,,,25"))
    assert response.status_code == 422
    assert "larger than 20 MB" in response.content.decode()
    assert ImportBatch.objects.count() == count
    big = _csv(*[f"51051051051{n:05d},1234,,,,25" for n in range(3000)])
    response = _upload(as_role("inventory"), product, big)
    assert response.status_code == 413
    assert "larger than 20 MB" in response.content.decode()
    assert ImportBatch.objects.count() == count


def test_commit_without_the_kept_file_asks_for_it_again(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    _upload(client, product, _csv(f"5105105105105100,1234,,,{NEXT_YEAR},25"))
    batch = ImportBatch.objects.latest("id")
    ImportUpload.objects.filter(batch_id=batch.pk).delete()  # gone, e.g. after a day
    response = client.post(
        reverse("dashboard:inventory_import_commit", args=[batch.pk]), follow=True
    )
    assert "upload it again" in response.content.decode()
    assert _available(product) == 1


def test_voucher_list_query_count_does_not_grow_with_rows(
    as_role, stock, django_assert_max_num_queries
):
    product, _batch, _voucher = stock
    for _ in range(20):
        VoucherFactory(product=product)
    client = as_role("inventory")
    client.get(reverse("dashboard:inventory_vouchers"))
    with django_assert_max_num_queries(12):
        client.get(reverse("dashboard:inventory_vouchers"))


def test_a_kept_upload_is_dropped_after_a_day(as_role, stock):
    product, _batch, _voucher = stock
    client = as_role("inventory")
    _upload(client, product, _csv(f"5105105105105100,1234,,,{NEXT_YEAR},25"))
    old = ImportBatch.objects.latest("id")
    ImportUpload.objects.filter(batch=old).update(created_at=timezone.now() - timedelta(days=2))
    _upload(client, product, _csv(f"4000000000000002,9999,,,{NEXT_YEAR},25"))
    assert not ImportUpload.objects.filter(batch=old).exists()
    assert not ImportUploadChunk.objects.filter(upload_id=old.pk).exists()
    assert ImportUpload.objects.filter(batch=ImportBatch.objects.latest("id")).exists()
