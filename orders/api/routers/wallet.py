"""The client's wallets and their ledger."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest
from ninja import Query, Router

from orders.api.auth import scoped
from orders.api.schemas import ErrorOut, LedgerPageOut, WalletListOut
from orders.enums import ApiScope
from orders.models import Wallet
from orders.selectors.finance import LedgerPage, wallet_ledger, wallets_of_client
from orders.selectors.paging import CURSOR_PATTERN

router = Router(tags=["Wallet"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut, 500: ErrorOut}


@router.get(
    "",
    auth=scoped(ApiScope.WALLET_READ),
    response={200: WalletListOut, **ERRORS},
    summary="Wallet balances",
)
def wallet_balances(request: HttpRequest) -> dict[str, list[Wallet]]:
    """The balance of each of your wallets (one per currency)."""
    wallets = wallets_of_client(client_id=request.auth.client.pk)  # type: ignore[attr-defined]
    return {"wallets": wallets}


@router.get(
    "/transactions",
    auth=scoped(ApiScope.WALLET_READ),
    response={200: LedgerPageOut, 400: ErrorOut, **ERRORS},
    summary="Wallet transactions",
)
def wallet_transactions(
    request: HttpRequest,
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$")] = None,
    cursor: Annotated[str | None, Query(pattern=CURSOR_PATTERN, max_length=41)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> LedgerPage:
    """Ledger entries newest first (debits negative), `next` cursor for the next page."""
    return wallet_ledger(
        client_id=request.auth.client.pk,  # type: ignore[attr-defined]
        currency=currency,
        cursor=cursor,
        limit=limit,
    )
