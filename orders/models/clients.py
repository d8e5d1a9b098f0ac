"""API customers, their credentials and their prepaid wallets."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders.enums import WalletEntryKind, all_api_scopes


class Client(models.Model):
    """A business buying through the API. Sees only its own data."""

    name = models.CharField(max_length=200, unique=True)
    contact_email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # The dashboard's clients workspace (orders/dashboard/clients.py): onboard a
        # partner, issue, limit, rotate and revoke its credentials, its webhooks.
        permissions = [("manage_clients", "Can onboard and manage API clients")]

    def __str__(self) -> str:
        return self.name


class ApiCredential(models.Model):
    """Key + secret pair. The secret is stored only as its SHA-256 hash."""

    class Mode(models.TextChoices):
        LIVE = "live", "Live"
        TEST = "test", "Test (sandbox)"

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="credentials")
    label = models.CharField(max_length=100, blank=True)
    mode = models.CharField(max_length=4, choices=Mode.choices, default=Mode.LIVE)
    public_key = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64)
    # After a rotation the replaced secret keeps working until this moment (the
    # overlap in which the partner deploys the new one); only its hash is kept.
    previous_secret_hash = models.CharField(max_length=64, blank=True, default="")
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # What the credential may do: values of enums.ApiScope (all of them unless
    # told otherwise); written through services/clients.py, which checks them.
    scopes = models.JSONField(default=all_api_scopes, blank=True)
    # Where it may be used from: normalized networks ("203.0.113.0/24",
    # "2001:db8::/32", orders/addresses.py); empty: any address.
    allowed_networks = models.JSONField(default=list, blank=True)
    # Its rate-limit plan: requests per minute (the 10-second burst scales with
    # it, orders/api/ratelimit.py); None: API_RATE_LIMIT_PER_MINUTE.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.public_key

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, self.hash_secret(secret))

    @staticmethod
    def previous_secret_matches(
        previous_hash: str, valid_until: datetime | None, secret: str, *, at: datetime
    ) -> bool:
        """Whether `secret` is the one a rotation replaced, still inside its overlap."""
        if not previous_hash or valid_until is None or at >= valid_until:
            return False
        return hmac.compare_digest(previous_hash, ApiCredential.hash_secret(secret))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.client.is_active

    @staticmethod
    def cache_key(*, public_key: str | None = None, pk: int | None = None) -> str:
        """The API's cache key of a credential looked up by key or by id (v5: the
        entry carries the scopes, the allowed networks, a rotated secret's overlap
        and the rate-limit plan)."""
        return f"api:cred:v5:k:{public_key}" if public_key is not None else f"api:cred:v5:i:{pk}"


class ApiErrorRecord(models.Model):
    """One error answer (status >= 400) of the API to an identified credential, for
    the clients workspace's "recent API errors". The path carries no query string;
    repeats of a 429 or an IP refusal are kept at most once a minute per
    credential; records older than API_ERROR_RETENTION (services/api_errors.py)
    are pruned by the worker's maintenance sweep."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="api_errors")
    credential = models.ForeignKey(
        ApiCredential, on_delete=models.CASCADE, related_name="api_errors"
    )
    status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="apierror_client_recent"),
            models.Index(fields=["created_at"], name="apierror_created"),
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.error_code} {self.method} {self.path}"


class Wallet(models.Model):
    """Prepaid balance of one client in one currency.

    The balance changes only through WalletEntry rows written by the wallet
    services in the same transaction; the database refuses a negative balance.
    """

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="wallets")
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client_id", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["client", "currency"], name="wallet_one_per_currency"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.client} {self.currency}"


class WalletEntry(models.Model):
    """One movement of money. Positive credits the wallet, negative debits it."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=WalletEntryKind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    balance_after = models.DecimalField(max_digits=14, decimal_places=2)
    order = models.ForeignKey(
        "orders.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallet_entries",
    )
    note = models.CharField(max_length=500, blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "wallet entries"
        indexes = [
            models.Index(fields=["wallet", "created_at", "id"], name="walletentry_ledger"),
            models.Index(fields=["kind", "created_at"], name="walletentry_kind_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="walletentry_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="walletentry_balance_after_not_negative"
            ),
            # An order is debited once and refunded at most once.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(kind__in=[WalletEntryKind.ORDER_DEBIT, WalletEntryKind.REFUND]),
                name="walletentry_one_debit_one_refund_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.wallet})"


class WalletCreditRequest(models.Model):
    """A staff top-up or adjustment above WALLET_CREDIT_SECOND_APPROVAL_LIMIT.

    It moves no money until a user other than its maker approves it; the
    approval writes the WalletEntry (`entry`) once. The maker may withdraw it
    (reject). The database refuses an approval by the maker or without its entry.
    """

    class Kind(models.TextChoices):
        TOP_UP = WalletEntryKind.TOP_UP.value, "Top-up"
        ADJUSTMENT = WalletEntryKind.ADJUSTMENT.value, "Adjustment"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="credit_requests")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    entry = models.OneToOneField(
        WalletEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_request",
    )

    class Meta:
        ordering = ["requested_at", "id"]
        indexes = [
            models.Index(fields=["status", "requested_at"], name="creditrequest_queue"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="creditrequest_amount_not_zero"),
            models.CheckConstraint(
                condition=~Q(status="APPROVED") | ~Q(decided_by=F("requested_by")),
                name="creditrequest_maker_is_not_checker",
            ),
            models.CheckConstraint(
                condition=~Q(status="APPROVED") | Q(entry__isnull=False),
                name="creditrequest_approved_has_entry",
            ),
            models.CheckConstraint(
                condition=Q(status="PENDING") | Q(decided_by__isnull=False),
                name="creditrequest_decided_has_checker",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.wallet}) {self.status}"
