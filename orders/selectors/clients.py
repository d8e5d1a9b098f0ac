"""Reads of the clients workspace: clients with their wallets, a client's
credentials (never a secret's hash) and its recent API errors."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.errors import NotFound
from orders.models import ApiCredential, ApiErrorRecord, Client, Wallet

RECENT_API_ERRORS = 50
# The client list counts each client's API errors over this window.
ERROR_COUNT_WINDOW = timedelta(hours=24)
CREDENTIAL_FIELDS_HIDDEN = ("secret_hash", "previous_secret_hash")


def client_list(*, search: str = "") -> list[Client]:
    """Every client (or those whose name holds `search`) by name, each with its
    wallets (`wallet_list`), its active credentials (`active_credentials`) and
    its API errors of the last 24 hours (`recent_errors`): three queries whatever
    the number of clients."""
    since = timezone.now() - ERROR_COUNT_WINDOW
    errors = (
        ApiErrorRecord.objects.filter(client_id=OuterRef("pk"), created_at__gte=since)
        .order_by()
        .values("client_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    qs = Client.objects.annotate(
        active_credentials=Count("credentials", filter=Q(credentials__revoked_at__isnull=True)),
        recent_errors=Coalesce(Subquery(errors, output_field=IntegerField()), 0),
    ).prefetch_related(
        Prefetch("wallets", queryset=Wallet.objects.order_by("currency"), to_attr="wallet_list")
    )
    if search.strip():
        qs = qs.filter(name__icontains=search.strip())
    return list(qs.order_by("name"))


def client_get(*, client_id: int) -> Client:
    client = Client.objects.filter(pk=client_id).first()
    if client is None:
        raise NotFound("No such client.")
    return client


def credential_list(*, client_id: int) -> list[ApiCredential]:
    """The client's credentials, newest first, revoked ones too; no secret hashes."""
    return list(
        ApiCredential.objects.filter(client_id=client_id)
        .defer(*CREDENTIAL_FIELDS_HIDDEN)
        .order_by("-created_at", "-id")
    )


def credential_get(*, client_id: int, credential_id: int) -> ApiCredential:
    """One of the client's credentials; another client's is NotFound like an unknown id."""
    credential = (
        ApiCredential.objects.filter(pk=credential_id, client_id=client_id)
        .defer(*CREDENTIAL_FIELDS_HIDDEN)
        .first()
    )
    if credential is None:
        raise NotFound("No such credential.")
    return credential


def api_error_list(*, client_id: int, limit: int = RECENT_API_ERRORS) -> list[ApiErrorRecord]:
    """The client's newest API error answers (by the (client, -created_at) index),
    each with its credential's key."""
    return list(
        ApiErrorRecord.objects.filter(client_id=client_id)
        .select_related("credential")
        .only(
            "status",
            "error_code",
            "method",
            "path",
            "request_id",
            "created_at",
            "credential__public_key",
            "credential__mode",
        )
        .order_by("-created_at", "-id")[:limit]
    )
