"""Gift voucher links: one hosted claim page per unit of a LINK order."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from orders.enums import GiftLinkStatus, LinkType


class GiftLink(models.Model):
    """The link of one delivered unit (an OrderItem) of a LINK order.

    The token in its URL is never stored: `token_seed` is random and the token
    is an HMAC of it under a key kept outside the database, and `token_hash`
    (a second keyed HMAC, unique) is what a presented token is looked up by.
    So the database alone yields no working link; the API rebuilds the URL
    for the partner with the key. A link is UNCLAIMED until its recipient
    reveals the code (CLAIMED); EXPIRED and REVOKED end it. `locked` stops a
    PROTECTED link after too many wrong one-time codes, until support unlocks it.
    """

    item = models.OneToOneField(
        "orders.OrderItem", on_delete=models.PROTECT, related_name="gift_link"
    )
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="gift_links")
    token_seed = models.CharField(max_length=32, help_text="Random; the token is keyed from it.")
    token_hash = models.CharField(max_length=64, unique=True)
    link_type = models.CharField(max_length=16, choices=LinkType.choices, default=LinkType.PUBLIC)
    status = models.CharField(
        max_length=16, choices=GiftLinkStatus.choices, default=GiftLinkStatus.UNCLAIMED
    )
    expires_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    # How often the code was shown (the claim included); each time is audited.
    views = models.PositiveIntegerField(default=0)
    locked = models.BooleanField(default=False)
    failed_attempts = models.PositiveIntegerField(default=0)
    # A PROTECTED link's one-time code, e-mailed to the order's customer: only its
    # keyed HMAC (orders.crypto.gift_link_code_hash), cleared once used.
    code_hash = models.CharField(max_length=64, blank=True, default="")
    code_sent_at = models.DateTimeField(null=True, blank=True)
    # Codes sent in the hour from code_window_started_at (the resend limit).
    code_sends = models.PositiveIntegerField(default=0)
    code_window_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id", "item_id"]
        indexes = [
            models.Index(fields=["order", "status"], name="giftlink_order_status"),
            # The expiry sweep: unclaimed links by expiry.
            models.Index(
                fields=["expires_at"],
                name="giftlink_unclaimed_expiry",
                condition=Q(status="UNCLAIMED"),
            ),
        ]

    def __str__(self) -> str:
        return f"Gift link {self.pk} of order {self.order_id} ({self.status})"
