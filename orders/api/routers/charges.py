"""POST /api/v1/charges: the exact price of an order before placing it."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from orders.api.auth import scoped
from orders.api.schemas import BODY_ERRORS, ChargesIn, ChargesOut, ErrorOut
from orders.enums import ApiScope
from orders.services.pricing import Quote, charges_quote

router = Router(tags=["Charges"])


@router.post(
    "",
    auth=scoped(ApiScope.ORDERS_READ),  # a quote changes nothing: reading prices
    response={
        200: ChargesOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        **BODY_ERRORS,
        429: ErrorOut,
        500: ErrorOut,
    },
    summary="Calculate charges",
)
def charges_calculate(request: HttpRequest, payload: ChargesIn) -> Quote:
    """Face value, discount, fees, taxes and total; placing the same order takes
    exactly `wallet_amount` from the wallet in `wallet_currency`."""
    return charges_quote(
        client=request.auth.client,  # type: ignore[attr-defined]
        product_id=payload.product_id,
        denomination=payload.denomination,
        quantity=payload.quantity,
        wallet_currency=payload.wallet_currency,
    )
