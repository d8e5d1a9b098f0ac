"""POST /api/v1/charges: the exact price of an order before placing it."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from orders.api.schemas import BODY_ERRORS, ChargesIn, ChargesOut, ErrorOut, money_text
from orders.services.pricing import charges_quote

router = Router(tags=["Charges"])


@router.post(
    "",
    response={
        200: ChargesOut,
        400: ErrorOut,
        401: ErrorOut,
        **BODY_ERRORS,
        429: ErrorOut,
        500: ErrorOut,
    },
    summary="Calculate charges",
)
def charges_calculate(request: HttpRequest, payload: ChargesIn) -> dict:
    """Face value, discount, fees, taxes and total; placing the same order takes
    exactly `wallet_amount` from the wallet in `wallet_currency`."""
    quote = charges_quote(
        client=request.auth.client,  # type: ignore[attr-defined]
        product_id=payload.product_id,
        denomination=payload.denomination,
        quantity=payload.quantity,
        wallet_currency=payload.wallet_currency,
    )
    return {
        "product_id": quote.product.pk,
        "denomination": money_text(quote.denomination),
        "quantity": quote.quantity,
        "currency": quote.currency,
        "face_value": money_text(quote.face_value),
        "discount": money_text(quote.discount),
        "fees": money_text(quote.fees),
        "taxes": money_text(quote.taxes),
        "total": money_text(quote.total),
        "wallet_currency": quote.wallet_currency,
        "exchange_rate": _rate_text(quote.exchange_rate),
        "wallet_amount": money_text(quote.wallet_amount),
        "delivery_time": quote.delivery_time,
    }


def _rate_text(rate: object) -> str:
    text = format(rate, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
