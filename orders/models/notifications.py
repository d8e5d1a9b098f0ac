"""Delivery e-mails: each request to (re)send one, and what became of it."""

from __future__ import annotations

from django.db import models

from orders.enums import DeliveryEmailStatus


class DeliveryEmail(models.Model):
    """One delivery e-mail to the customer: QUEUED by a request, SENT or FAILED by the task.

    The body is not stored: the task builds it from the order when it sends.
    `last_error` is a short, fixed description (never the server's answer).
    """

    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="delivery_emails"
    )
    recipient = models.EmailField()
    requested_by = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=8, choices=DeliveryEmailStatus.choices, default=DeliveryEmailStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; while a worker sends, its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="deliveryemail_due",
                condition=models.Q(status="QUEUED"),
            ),
            models.Index(fields=["order", "created_at"], name="deliveryemail_order"),
        ]

    def __str__(self) -> str:
        return f"delivery e-mail {self.pk} of order {self.order_id}: {self.status}"
