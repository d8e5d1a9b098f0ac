"""Products: the active catalogue, live delivery time and availability."""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest
from ninja import Path, Query, Router

from orders.api.auth import scoped
from orders.api.schemas import (
    MAX_ID,
    Availability,
    AvailabilityOut,
    DenominationQuery,
    ErrorOut,
    ProductListOut,
    ProductOut,
)
from orders.enums import ApiScope
from orders.errors import NotFound
from orders.models import Product
from orders.selectors.inventory import active_products, available_stock, stock_by_denomination
from orders.services.pricing import denomination_check, quantity_check

router = Router(tags=["Products"])

ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut, 500: ErrorOut}


def _product(product_id: int) -> Product:
    products = active_products(product_id=product_id)
    if not products:
        raise NotFound()
    return products[0]


@router.get(
    "",
    auth=scoped(ApiScope.ORDERS_READ),
    response={200: ProductListOut, **ERRORS},
    summary="List products",
)
def product_list(request: HttpRequest) -> ProductListOut:
    """Every active product with its live delivery time (one stock query for all)."""
    products = active_products()
    stock = stock_by_denomination(product_ids=[p.pk for p in products])
    return ProductListOut.of(products, stock=stock)


@router.get(
    "/{id}",
    auth=scoped(ApiScope.ORDERS_READ),
    response={200: ProductOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Get a product",
)
def product_detail(request: HttpRequest, id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> ProductOut:
    """One active product; an unknown or inactive id answers 404."""
    product = _product(id)
    return ProductOut.of(product, stock=stock_by_denomination(product_ids=[product.pk]))


@router.get(
    "/{id}/availability",
    auth=scoped(ApiScope.ORDERS_READ),
    response={200: AvailabilityOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Check availability",
)
def product_availability(
    request: HttpRequest,
    id: Annotated[int, Path(ge=1, le=MAX_ID)],
    denomination: Annotated[DenominationQuery, Query(example="25.00")],
    quantity: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Availability:
    """Whether inventory covers `quantity` units of `denomination` right now.

    `available` true means an order placed now is fulfilled from stock
    (delivery_time INSTANT); otherwise it goes to the vendor (DELAYED).
    """
    product = _product(id)
    value = denomination_check(product=product, denomination=denomination)
    units = quantity_check(product=product, quantity=quantity)
    return Availability(
        product_id=product.pk,
        denomination=value,
        quantity=units,
        available_units=available_stock(product_id=product.pk, denomination=value),
    )
