"""Resending the delivery e-mail against real SMTP servers: down, silent, working.

The resend answers at once with "queued"; a task sends after commit with a
timeout, and the order page shows QUEUED, then SENT or FAILED. Nothing in a
request, and nothing under the audit chain lock, waits on SMTP.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.urls import reverse

from orders.enums import DeliveryEmailStatus
from orders.models import AuditEvent, DeliveryEmail
from orders.roles import ROLE_PERMISSIONS
from orders.services.actors import Actor
from orders.services.audit import audit_record
from tests.factories import ProductFactory
from tests.helpers.api import make_api_user, order_body
from tests.helpers.dashboard import CARD_NUMBER, PIN, REFERENCE, client_for
from tests.helpers.net import free_port
from tests.helpers.tasks import run_ready_tasks, wait_until

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
BODY_LINE = "For your security this e-mail never contains the codes themselves."


def use_smtp(settings: Any, *, port: int, timeout: float = 1, attempts: int = 1) -> None:
    """Send over SMTP to 127.0.0.1:port, as starship/settings.py configures it."""
    settings.EMAIL_MAX_ATTEMPTS = attempts
    settings.EMAIL_RETRY_BASE_SECONDS = 0
    settings.MAILERS = {
        "default": {
            "BACKEND": SMTP_BACKEND,
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": timeout},
        }
    }


class SilentSmtp:
    """Accepts TCP connections and never says a word, until released or `hold` seconds."""

    def __init__(self, *, hold: float = 15) -> None:
        self.hold = hold
        self.connections = 0
        self.connected = threading.Event()
        self.release = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self.connected.set()
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            self.release.wait(self.hold)

    def close(self) -> None:
        self.release.set()
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


class SinkHandler:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        text = f"{parsed['Subject']}\n{body.get_content() if body else ''}"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), text))
        return "250 Message accepted for delivery"


@pytest.fixture(autouse=True)
def _roles(transactional_db: None) -> None:
    """The role groups of migration 0003 (a transactional test's flush removes them)."""
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


@pytest.fixture
def silent_smtp() -> Iterator[SilentSmtp]:
    server = SilentSmtp()
    yield server
    server.close()


@pytest.fixture
def smtp_sink() -> Iterator[tuple[SinkHandler, int]]:
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def resend(client: Any, order: Any, *, htmx: bool = True) -> Any:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    url = reverse("dashboard:order_resend", args=[order.pk])
    return client.post(url, {"reason": "customer lost the mail"}, **headers)


def detail_html(client: Any, order: Any) -> str:
    return client.get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()


def email_state(order: Any) -> str:
    latest = DeliveryEmail.objects.filter(order=order).order_by("-id").first()
    return latest.status if latest else ""


pytestmark = pytest.mark.django_db(transaction=True)


def test_smtp_down_the_resend_answers_queued_and_the_task_records_failed(
    support_client, delivered_order, settings
):
    order, _ = delivered_order
    use_smtp(settings, port=free_port(), attempts=2)

    response = resend(support_client, order)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Resend delivery e-mail: queued" in html
    assert 'id="order-emails"' in html and "Queued" in html
    assert 'hx-trigger="every 3s"' in html  # the state reloads itself while queued
    assert email_state(order) == DeliveryEmailStatus.QUEUED
    assert AuditEvent.objects.filter(action="order.delivery_email_resend", order=order).count() == 1

    wait_until(
        lambda: email_state(order) == DeliveryEmailStatus.FAILED,
        tick=run_ready_tasks,
        what="the e-mail to be marked failed",
    )
    email = DeliveryEmail.objects.get(order=order)
    assert email.attempts == 2 and email.finished_at is not None
    assert email.last_error == "Connection refused by the SMTP server"
    page = detail_html(support_client, order)
    assert 'data-status="FAILED"' in page and "Connection refused by the SMTP server" in page
    assert 'hx-trigger="every 3s"' not in page


def test_smtp_down_a_plain_post_redirects_with_the_queued_message(
    support_client, delivered_order, settings
):
    order, _ = delivered_order
    use_smtp(settings, port=free_port())
    response = resend(support_client, order, htmx=False)
    assert response.status_code == 302
    page = support_client.get(response["Location"]).content.decode()
    assert "Resend delivery e-mail: queued" in page


def test_silent_smtp_the_resend_returns_at_once_and_the_task_gives_up_after_the_timeout(
    support_client, delivered_order, settings, silent_smtp
):
    order, _ = delivered_order
    use_smtp(settings, port=silent_smtp.port, timeout=1)

    response = resend(support_client, order)
    assert response.status_code == 200
    assert "Resend delivery e-mail: queued" in response.content.decode()
    assert silent_smtp.connections == 0  # the request never talked to SMTP

    run_ready_tasks()
    assert silent_smtp.connections == 1
    email = DeliveryEmail.objects.get(order=order)
    assert email.status == DeliveryEmailStatus.FAILED
    assert email.last_error == "No answer from the SMTP server within 1 s"
    page = detail_html(support_client, order)
    assert 'data-status="FAILED"' in page and "No answer from the SMTP server within 1 s" in page


@pytest.mark.postgres
def test_silent_smtp_never_holds_up_the_audit_chain_or_an_api_order(
    users, delivered_order, settings, silent_smtp
):
    """While the send hangs, an audit event and an API order on the same chain complete."""
    order, _ = delivered_order
    settings.AUDIT_CHAINS = 1  # every event on one chain: the resend's and the others
    use_smtp(settings, port=silent_smtp.port, timeout=10)
    shop = make_api_user("Hanging Shop", Actor.system("test"))
    product = ProductFactory(name="Comet Cards")
    send_done = threading.Event()
    failures: list[BaseException] = []

    def agent_resends_then_worker_sends() -> None:
        try:
            resend(client_for(users["support"]), order)
            run_ready_tasks()
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            send_done.set()
            connection.close()

    sender = threading.Thread(target=agent_resends_then_worker_sends, daemon=True)
    sender.start()
    try:
        assert silent_smtp.connected.wait(20), "nobody connected to the SMTP server"
        audit_record(action="test.unrelated", actor=Actor.system("test"), reason="meanwhile")
        placed = shop.post("/api/v1/orders", order_body(product, reference_code="HANG-1"))
        finished_before_the_send = not send_done.is_set()
    finally:
        silent_smtp.release.set()
        sender.join(timeout=30)
    assert placed.status_code == 201
    assert finished_before_the_send, "the audit event or the API order waited for SMTP"
    assert not failures
    assert email_state(order) == DeliveryEmailStatus.FAILED


def test_working_smtp_receives_the_mail_and_the_state_becomes_sent(
    support_client, delivered_order, settings, smtp_sink, caplog
):
    handler, port = smtp_sink
    order, _ = delivered_order
    use_smtp(settings, port=port, timeout=5)

    response = resend(support_client, order)
    assert "Resend delivery e-mail: queued" in response.content.decode()
    assert handler.messages == []

    with caplog.at_level(logging.DEBUG):
        run_ready_tasks()
    assert len(handler.messages) == 1
    sender, recipients, content = handler.messages[0]
    assert recipients == ["grace@example.com"] and sender == settings.DEFAULT_FROM_EMAIL
    assert order.reference_code in content and BODY_LINE in content
    for secret in (CARD_NUMBER, PIN, REFERENCE):
        assert secret not in content
    # Neither the body nor any secret reaches the logs.
    assert BODY_LINE not in caplog.text and CARD_NUMBER not in caplog.text

    email = DeliveryEmail.objects.get(order=order)
    assert email.status == DeliveryEmailStatus.SENT and email.sent_at is not None
    assert email.attempts == 1 and email.last_error == ""
    page = detail_html(support_client, order)
    assert 'data-status="SENT"' in page and "grace@example.com" in page
