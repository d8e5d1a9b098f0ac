"""Append-only, tamper-evident audit trail.

An event is written unsealed (one INSERT, no lock): `seq`, `prev_hash`, `hash`
and `sealed_at` stay empty. The sealer (`audit_seal`, run by the worker about
every second) links unsealed events, chain by chain, into `AUDIT_CHAINS` keyed
hash chains: each sealed event stores the HMAC of its content and of the
previous event's HMAC, under the key named by `key_id` (AUDIT_KEY, never in
the database), and every sealed batch is checkpointed outside the database.
`check_audit_chain` recomputes every chain, compares it with the checkpoints
and reports the unsealed backlog. On PostgreSQL triggers reject UPDATE, DELETE
and TRUNCATE, except the one UPDATE that seals a not yet sealed event.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditChainHead(models.Model):
    """The last sealed sequence number and hash of one chain; locked while sealing."""

    chain = models.PositiveIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"chain {self.chain} @ {self.seq}"


class AuditEvent(models.Model):
    """Who did what to which order or voucher, why, from where, when."""

    chain = models.PositiveIntegerField()
    # Set once, by the sealer; NULL/"" while the event is not sealed yet.
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")
    sealed_at = models.DateTimeField(null=True, blank=True)
    key_id = models.CharField(max_length=16, default="")
    action = models.CharField(max_length=64, db_index=True)
    # order and actor_user lead the composite indexes below: no index of their own,
    # one less for every event's INSERT to write.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    actor_credential = models.ForeignKey(
        "orders.ApiCredential",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=150)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="audit_events",
    )
    voucher = models.ForeignKey(
        "orders.Voucher",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    reason = models.CharField(max_length=500, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_audit_log", "Can view the audit log")]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="auditevent_chain_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["order", "created_at"], name="auditevent_order"),
            models.Index(fields=["actor_user", "created_at"], name="auditevent_user"),
            models.Index(fields=["created_at", "id"], name="auditevent_time"),
            # Only the unsealed backlog: what the sealer and the seal-lag query read.
            models.Index(
                fields=["chain", "id"],
                name="auditevent_unsealed",
                condition=models.Q(sealed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"

    @property
    def is_sealed(self) -> bool:
        return self.sealed_at is not None
