"""Logs as the operator reads them: one line per request with its id, the id
carried into the tasks the request queued, JSON with LOG_FORMAT=json, refusals
without tracebacks, and never a voucher secret or an API secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from orders.logs import DropLoggedRefusals, LogContext
from orders.models import Order
from orders.services.import_file import CSV_COLUMNS
from orders.services.imports import voucher_import_commit, voucher_import_validate
from orders.services.webhooks import webhook_endpoint_create
from tests.factories import ProductFactory, UserFactory
from tests.helpers.api import make_api_user, order_body
from tests.helpers.dashboard import client_for
from tests.helpers.tasks import run_ready_tasks

pytestmark = pytest.mark.django_db


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def requests(self) -> list[dict]:
        return [line for line in self.lines if line["logger"] == "starship.request"]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """Every record at DEBUG and up, through the project's JSON formatter and the
    console handler's filters, as LOG_FORMAT=json writes them."""
    config = dict(settings.LOGGING["formatters"]["json"])
    factory = import_string(config.pop("()"))
    formatter = factory(fmt=config.pop("format"), **config)  # as dictConfig calls it
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(LogContext())
    handler.addFilter(DropLoggedRefusals())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    request_level = logging.getLogger("starship.request").level
    logging.getLogger("starship.request").setLevel(logging.INFO)
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        logging.getLogger("starship.request").setLevel(request_level)


def test_each_request_logs_one_line_with_its_id_kept_or_made(captured, system_actor):
    shop = make_api_user("Log Shop", system_actor)
    kept = shop.get("/api/v1/wallet?cursor=abc", HTTP_X_REQUEST_ID="lb-0123456789")
    made = shop.get("/api/v1/wallet")
    forged = shop.get("/api/v1/wallet", HTTP_X_REQUEST_ID="bad id\nINFO forged line")

    assert kept["X-Request-ID"] == "lb-0123456789"
    assert len(made["X-Request-ID"]) == 32
    assert forged["X-Request-ID"] != "bad id\nINFO forged line"
    lines = captured.requests()
    assert [line["request_id"] for line in lines] == [
        "lb-0123456789",
        made["X-Request-ID"],
        forged["X-Request-ID"],
    ]
    first = lines[0]
    assert (first["method"], first["path"], first["status"]) == ("GET", "/api/v1/wallet", 200)
    assert first["duration_ms"] >= 0
    assert first["credential_id"] == shop.credential.pk
    assert first["level"] == "INFO"
    assert first["time"].endswith("+00:00")
    assert "cursor" not in first["message"]  # no query string


def test_expected_refusals_log_one_line_without_a_traceback(captured, system_actor):
    shop = make_api_user("Log Shop", system_actor)
    support = client_for(UserFactory(username="log-support", role="support"))
    not_found = shop.get("/api/v1/orders/999999")
    forbidden = support.get(reverse("dashboard:wallet_list"))
    missing = HttpClient().get("/no-such-page")

    assert (not_found.status_code, forbidden.status_code, missing.status_code) == (404, 403, 404)
    assert [line["status"] for line in captured.requests()] == [404, 403, 404]
    # Django's own "Not Found: …" / "Forbidden …" lines (a traceback each) are dropped.
    assert not [line for line in captured.lines if line["logger"] == "django.request"]
    assert not any("exc_info" in line or "Traceback" in json.dumps(line) for line in captured.lines)
    assert captured.requests()[1]["user_id"] is not None


@pytest.mark.django_db(transaction=True)  # the in-process worker commits
def test_the_request_id_follows_an_order_into_its_task(captured, system_actor, settings):
    settings.FULFILMENT_STOCK_BATCHER = False  # a task per order
    shop = make_api_user("Log Shop", system_actor)
    product = ProductFactory(name="Log Card")
    response = shop.post(
        "/api/v1/orders", order_body(product), HTTP_X_REQUEST_ID="trace-order-000001"
    )
    assert response.status_code == 201
    order_id = response.json()["id"]
    (task,) = DBTaskResult.objects.filter(args_kwargs__args=[order_id])
    assert task.args_kwargs["kwargs"] == {"request_id": "trace-order-000001"}

    run_ready_tasks()  # no stock: the vendor path, which logs its steps
    assert Order.objects.get(pk=order_id).status == "DELIVERED"
    in_task = [line for line in captured.lines if line["logger"] != "starship.request"]
    assert in_task, "the fulfilment run logged nothing"
    assert all(line["request_id"] == "trace-order-000001" for line in in_task if line["order_id"])
    placed = captured.requests()[0]
    assert (placed["order_id"], placed["request_id"]) == (order_id, "trace-order-000001")


@pytest.mark.django_db(transaction=True)  # the in-process worker commits
def test_a_whole_flow_logs_no_voucher_secret_and_no_api_secret(captured, system_actor):
    shop = make_api_user("Log Shop", system_actor)
    product = ProductFactory(name="Log Card")
    rows = [
        f"LOGCARD-{n:06d}-SECRET,{938170 + n},LOGREF-{n}-SECRET,,2099-12-31,25.00" for n in range(3)
    ]
    text = "\n".join([",".join(CSV_COLUMNS), *rows]) + "\n"
    preview = voucher_import_validate(
        product_id=product.pk, stream=io.StringIO(text), file_name="log.csv", actor=system_actor
    )
    assert preview.is_valid, preview.errors
    voucher_import_commit(batch_id=preview.batch_id, stream=io.StringIO(text), actor=system_actor)
    webhook_endpoint_create(
        client=shop.client,
        url="http://127.0.0.1:9/hooks",  # nothing listens: the delivery fails and is logged
        events=["order.delivered"],
        actor=system_actor,
    )
    placed = shop.post("/api/v1/orders", order_body(product, quantity=2)).json()["id"]
    run_ready_tasks()
    token = shop.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
    ).json()["access_token"]
    read = shop.http.get(f"/api/v1/orders/{placed}", headers={"Authorization": f"Bearer {token}"})
    vouchers = read.json()["vouchers"]
    assert len(vouchers) == 2 and vouchers[0]["card_number"].endswith("-SECRET")
    support = client_for(UserFactory(username="log-admin", role="admin"))  # no groups here
    voucher_id = Order.objects.get(pk=placed).items.first().voucher_id
    revealed = support.post(
        reverse("dashboard:voucher_reveal", args=[voucher_id]),
        {"reason": "not_received", "note": "ticket 7"},
        HTTP_HX_REQUEST="true",
    )
    assert revealed.status_code == 200 and "-SECRET" in revealed.content.decode()

    text_logged = captured.stream.getvalue()
    assert captured.requests(), "the flow logged no request lines"
    for secret in [
        *(v["card_number"] for v in vouchers),
        *(v["pin_code"] for v in vouchers),
        "SECRET",
        shop.secret,
        token,
    ]:
        assert secret not in text_logged
