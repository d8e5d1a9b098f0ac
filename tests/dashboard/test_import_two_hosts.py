"""Two web hosts, one session: an import previewed through one gunicorn is
committed through another. Nothing of the upload lives on a host: the file is
kept, encrypted, in the database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import Client

from orders.enums import InventoryStatus
from orders.models import ImportBatch, ImportUpload, Voucher
from orders.services.import_file import CSV_COLUMNS
from tests.factories import ProductFactory, UserFactory
from tests.helpers.servers import gunicorn_hosts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two gunicorn masters on two ports, production settings, the test database."""
    with gunicorn_hosts(tmp_path, 2) as (first, second):
        yield first, second


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_an_import_previewed_on_one_host_is_committed_on_another(two_hosts):
    first, second = two_hosts
    product = ProductFactory(name="Two Hosts Card", denominations=["25.00"])
    admin = UserFactory(username="two-hosts-admin", role="admin")
    browser = Client()
    browser.force_login(admin)  # the session row both hosts read
    cookies = {"sessionid": browser.cookies["sessionid"].value}
    rows = [f"TWOHOSTS-{n:04d}-CODE,{4100 + n},,,2099-12-31,25.00" for n in range(40)]
    body = ("\n".join([",".join(CSV_COLUMNS), *rows]) + "\n").encode()

    with httpx.Client(base_url=first, cookies=cookies, follow_redirects=False) as one:
        form = one.get("/dashboard/inventory/import/")
        assert form.status_code == 200, form.text[:300]
        uploaded = one.post(
            "/dashboard/inventory/import/",
            data={"product": str(product.pk), "csrfmiddlewaretoken": _csrf(form.text)},
            files={"file": ("codes.csv", body, "text/csv")},
            headers={"Referer": f"{first}/dashboard/inventory/import/"},
        )
        assert uploaded.status_code == 302, uploaded.text[:500]
        preview_path = uploaded.headers["Location"]
        csrf_cookie = one.cookies["csrftoken"]

    batch = ImportBatch.objects.latest("id")
    assert ImportUpload.objects.filter(batch=batch, complete=True).exists()
    with httpx.Client(
        base_url=second, cookies={**cookies, "csrftoken": csrf_cookie}, follow_redirects=False
    ) as two:
        preview = two.get(preview_path)
        assert preview.status_code == 200
        assert "Ready to import 40 vouchers into Two Hosts Card" in preview.text
        committed = two.post(
            f"/dashboard/inventory/import/{batch.pk}/commit/",
            data={"csrfmiddlewaretoken": _csrf(preview.text)},
            headers={"Referer": f"{second}{preview_path}"},
        )
        assert committed.status_code == 302, committed.text[:500]
        assert committed.headers["Location"].endswith("/dashboard/inventory/")

    batch.refresh_from_db()
    assert (batch.status, batch.imported_count) == ("IMPORTED", 40)
    stocked = Voucher.objects.filter(product=product, status=InventoryStatus.AVAILABLE)
    assert stocked.count() == 40
    assert not ImportUpload.objects.filter(batch=batch).exists()
