"""Customer e-mails about an order.

The delivery e-mail carries a summary and how to get the vouchers, never a
voucher secret: e-mail is stored in clear in mailboxes, relays and the
console backend's logs, while a secret may leave the system only through the
audited reveal paths. The partner (our API client) delivers the codes to its
customer; the e-mail points the customer back to them.

No request and no transaction ever waits on SMTP. A resend records a
DeliveryEmail (QUEUED) and its audit event in one short transaction and
enqueues the send task on commit. The task claims the row in a short
transaction, sends with no transaction open (each SMTP operation times out
after EMAIL_TIMEOUT seconds), then records SENT, or FAILED after
EMAIL_MAX_ATTEMPTS tries of a transient failure (or at once on a permanent
one). The body is built in the task and never logged or stored. The task
`delivery_email_send_task` runs `delivery_email_send`; claiming and the
lost-task sweep are the outbox's (see outbox.py).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from orders import logs
from orders.enums import DeliveryEmailStatus, OrderStatus
from orders.errors import NotFound, ValidationFailed
from orders.models import DeliveryEmail, Order
from orders.services.actors import Actor
from orders.services.audit import audit_record
from orders.services.backoff import backoff_seconds
from orders.services.outbox import outbox_claim, outbox_overdue
from orders.tasks import enqueue, enqueue_on_commit

logger = logging.getLogger(__name__)

RESENDABLE_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED})
# For a mailer configured without a timeout (README: EMAIL_TIMEOUT's default).
FALLBACK_TIMEOUT_SECONDS = 10


def _delivery_email_body(order: Order) -> str:
    name = order.customer_name or "there"
    units = f"{order.quantity} × {order.product_name} {order.denomination} {order.currency}"
    return (
        f"Hello {name},\n\n"
        f"Your order {order.reference_code} has been delivered: {units}.\n\n"
        f"To use your reward, open the message or app where you ordered it from "
        f"{order.client.name}; the codes are shown there. For your security this "
        f"e-mail never contains the codes themselves.\n\n"
        f"If you did not receive your codes, reply to this e-mail quoting order "
        f"{order.pk} and our support team will help.\n"
    )


def delivery_email_backoff_seconds(*, attempts: int) -> int:
    """Delay before the next try after `attempts` failures: base × 2^(n-1), ≤ 1 h."""
    return backoff_seconds(base=settings.EMAIL_RETRY_BASE_SECONDS, attempts=attempts)


@transaction.atomic
def delivery_email_queue(*, order_id: int, actor: Actor, reason: str = "") -> DeliveryEmail:
    """Queue the delivery e-mail of a delivered order again; audited, sent after commit.

    One at a time per order: while one is queued, another resend is refused.
    """
    order = Order.objects.select_for_update(no_key=True).filter(pk=order_id).first()
    if order is None:
        raise NotFound()
    if order.status not in RESENDABLE_STATUSES:
        raise ValidationFailed(
            "Only a delivered or partially delivered order has a delivery e-mail to resend.",
            field="order",
        )
    if not order.customer_email:
        raise ValidationFailed("This order has no customer e-mail address.", field="order")
    if order.delivery_emails.filter(status=DeliveryEmailStatus.QUEUED).exists():
        raise ValidationFailed(
            "A delivery e-mail is already queued for this order; its state is shown below.",
            field="order",
        )
    email = DeliveryEmail.objects.create(
        order=order,
        recipient=order.customer_email,
        requested_by=actor.label[:200],
        next_attempt_at=timezone.now(),
    )
    audit_record(
        action="order.delivery_email_resend",
        actor=actor,
        order_id=order.pk,
        reason=reason,
        data={"to": order.customer_email, "delivery_email_id": email.pk},
    )
    enqueue_on_commit(delivery_email_send_task, email.pk)
    return email


def _smtp_failure(error: Exception, *, timeout: float) -> tuple[str, bool]:
    """A short fixed description of a failed send (no server text), and whether to retry."""
    causes: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(causes) < 5:
        causes.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(cause, TimeoutError) for cause in causes):
        return f"No answer from the SMTP server within {timeout:g} s", True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return "The SMTP server refused the recipient", all(400 <= c < 500 for c in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return f"The SMTP server answered {error.smtp_code}", 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "The SMTP server closed the connection", True
    if isinstance(error, smtplib.SMTPException):
        return f"SMTP error ({type(error).__name__})", False
    if isinstance(error, ConnectionRefusedError):
        return "Connection refused by the SMTP server", True
    if isinstance(error, OSError):
        return f"Could not reach the SMTP server ({type(error).__name__})", True
    return f"Sending failed ({type(error).__name__})", False


def _mailer_timeout() -> float:
    """Seconds each SMTP operation may take: MAILERS["default"]["OPTIONS"]["timeout"]."""
    config: dict[str, Any] = settings.MAILERS.get("default", {})
    options: dict[str, Any] = config.get("OPTIONS") or {}
    return float(options.get("timeout") or FALLBACK_TIMEOUT_SECONDS)


def _send(email: DeliveryEmail) -> tuple[str, bool]:
    """Send one message over the default mailer; ("", False) when it was accepted."""
    order = email.order
    mailer = mailers.default
    timeout = _mailer_timeout()
    # An SMTP-like backend configured without a timeout would wait forever.
    if getattr(mailer, "timeout", 0) is None:
        setattr(mailer, "timeout", timeout)  # noqa: B010 - not every backend has one
    message = EmailMessage(
        subject=f"Your order {order.reference_code} has been delivered",
        body=_delivery_email_body(order),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
    )
    try:
        mailer.send_messages([message])
    except Exception as error:
        return _smtp_failure(error, timeout=timeout)
    return "", False


@task
def delivery_email_send_task(email_id: int, request_id: str = "") -> None:
    """Send one queued delivery e-mail (after the request's commit, never inside it)."""
    with logs.bound(request_id=request_id or None):
        delivery_email_send(email_id=email_id)


def delivery_email_send(*, email_id: int) -> DeliveryEmail | None:
    """Send one queued delivery e-mail with no transaction open; record SENT, retry or FAILED."""
    email = outbox_claim(
        DeliveryEmail.objects.select_related("order__client").filter(
            status=DeliveryEmailStatus.QUEUED
        ),
        pk=email_id,
        # A handful of SMTP round trips, each bounded by the timeout: a dead
        # worker's claim runs out.
        hold_seconds=_mailer_timeout() * 8 + 10,
    )
    if email is None:
        return DeliveryEmail.objects.filter(pk=email_id).first()
    error, transient = _send(email)
    return _record_attempt(email_id=email.pk, error=error, transient=transient)


@transaction.atomic
def _record_attempt(*, email_id: int, error: str, transient: bool) -> DeliveryEmail:
    email = DeliveryEmail.objects.select_for_update(no_key=True).get(pk=email_id)
    now = timezone.now()
    email.attempts += 1
    email.last_error = error[:200]
    if not error:
        email.status = DeliveryEmailStatus.SENT
        email.sent_at = email.finished_at = now
        email.next_attempt_at = None
        logger.info("delivery e-mail %d of order %d sent", email.pk, email.order_id)
    elif transient and email.attempts < settings.EMAIL_MAX_ATTEMPTS:
        due = now + timedelta(seconds=delivery_email_backoff_seconds(attempts=email.attempts))
        email.next_attempt_at = due
        enqueue_on_commit(delivery_email_send_task, email.pk, run_after=due)
        logger.warning(
            "delivery e-mail %d of order %d: attempt %d failed (%s); retrying",
            email.pk,
            email.order_id,
            email.attempts,
            error,
        )
    else:
        email.status = DeliveryEmailStatus.FAILED
        email.finished_at = now
        email.next_attempt_at = None
        logger.warning(
            "delivery e-mail %d of order %d failed after %d attempt(s): %s",
            email.pk,
            email.order_id,
            email.attempts,
            error,
        )
    email.save(
        update_fields=[
            "status",
            "attempts",
            "last_error",
            "sent_at",
            "finished_at",
            "next_attempt_at",
        ]
    )
    return email


def delivery_emails_resume(*, overdue_seconds: int | None = None, limit: int = 500) -> int:
    """Re-enqueue QUEUED e-mails whose task was lost (due for longer than the lease)."""
    ids = outbox_overdue(
        DeliveryEmail.objects.filter(status=DeliveryEmailStatus.QUEUED),
        overdue_seconds=overdue_seconds,
        limit=limit,
    )
    for email_id in ids:
        enqueue(delivery_email_send_task, email_id)
    return len(ids)
