"""LINK orders as a partner places them, delivered by the real fulfilment engine,
and the tokens of their claim URLs."""

from __future__ import annotations

from typing import Any

from orders.models import Order, Product
from orders.services.fulfilment import order_fulfil
from tests.factories import add_stock
from tests.helpers.api import ApiUser, order_body


def link_order(
    shop: ApiUser, product: Product, *, quantity: int = 1, stocked: bool = True, **body: Any
) -> Order:
    """A LINK order placed over the API and fulfilled (from stock unless `stocked`
    is False: then by the simulated vendor)."""
    if stocked:
        add_stock(product, "25.00", quantity)
    response = shop.post(
        "/api/v1/orders",
        order_body(product, quantity=quantity, delivery_method="link", **body),
    )
    assert response.status_code == 201, response.content
    return order_fulfil(order_id=response.json()["id"])


def claim_tokens(detail: dict[str, Any]) -> list[str]:
    """The tokens of an order detail's claim URLs (…/gift/<token>/), in item order."""
    return [voucher["claim_url"].rstrip("/").rsplit("/", 1)[1] for voucher in detail["vouchers"]]


def claim_path(token: str) -> str:
    return f"/gift/{token}/"
