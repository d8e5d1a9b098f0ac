"""Customer e-mails about an order.

The delivery e-mail carries a summary and how to get the vouchers, never a
voucher secret: e-mail is stored in clear in mailboxes, relays and the
console backend's logs, while a secret may leave the system only through the
audited reveal paths. The partner (our API client) delivers the codes to its
customer; the e-mail points the customer back to them.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from orders.enums import OrderStatus
from orders.errors import NotFound, ValidationFailed
from orders.models import Order
from orders.services.actors import Actor
from orders.services.audit import audit_record

RESENDABLE_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_DELIVERED})


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


@transaction.atomic
def delivery_email_send(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Send the delivery e-mail of a delivered order again; audited, never with a secret."""
    order = Order.objects.select_related("client").filter(pk=order_id).first()
    if order is None:
        raise NotFound()
    if order.status not in RESENDABLE_STATUSES:
        raise ValidationFailed(
            "Only a delivered or partially delivered order has a delivery e-mail to resend.",
            field="order",
        )
    if not order.customer_email:
        raise ValidationFailed("This order has no customer e-mail address.", field="order")
    audit_record(
        action="order.delivery_email_resend",
        actor=actor,
        order_id=order.pk,
        reason=reason,
        data={"to": order.customer_email},
    )
    # Sent last: if sending fails, the audit event rolls back with it.
    send_mail(
        subject=f"Your order {order.reference_code} has been delivered",
        message=_delivery_email_body(order),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.customer_email],
    )
    return order
