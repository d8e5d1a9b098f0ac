"""Products: the active catalogue, live delivery time and availability."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from django.http import HttpRequest
from ninja import Path, Query, Router

from orders.api.schemas import (
    MAX_ID,
    AvailabilityOut,
    DenominationQuery,
    ErrorOut,
    ProductListOut,
    ProductOut,
    money_text,
)
from orders.enums import DeliveryTime
from orders.errors import NotFound
from orders.models import Product
from orders.selectors.inventory import active_products, available_stock, stock_by_denomination
from orders.services.pricing import denomination_check, quantity_check

router = Router(tags=["Products"])

ERRORS = {401: ErrorOut, 429: ErrorOut, 500: ErrorOut}


def product_out(product: Product, stock: dict[Decimal, int]) -> dict:
    """Public fields only: never classification, link type or inventory status."""
    in_stock = sorted(value for value, units in stock.items() if units > 0)
    if product.is_range:
        assert product.min_denomination is not None and product.max_denomination is not None
        low, high = product.min_denomination, product.max_denomination
        instant = [value for value in in_stock if low <= value <= high]
        delivery = DeliveryTime.INSTANT if instant else DeliveryTime.DELAYED
        listed = None
    else:
        values = product.denomination_list
        low = high = Decimal(0)
        instant = [value for value in values if stock.get(value, 0) > 0]
        delivery = (
            DeliveryTime.INSTANT if values and len(instant) == len(values) else DeliveryTime.DELAYED
        )
        listed = [money_text(value) for value in values]
    return {
        "id": product.pk,
        "name": product.name,
        "brand": product.brand,
        "kind": product.kind,
        "currency": product.currency,
        "denominations": listed,
        "min_denomination": money_text(low) if listed is None else None,
        "max_denomination": money_text(high) if listed is None else None,
        "delivery_type": product.delivery_type,
        "delivery_time": delivery,
        "instant_denominations": [money_text(value) for value in instant],
        "bulk_limit": product.bulk_limit,
        "description": product.description,
    }


def _product(product_id: int) -> Product:
    products = active_products(product_id=product_id)
    if not products:
        raise NotFound()
    return products[0]


@router.get("", response={200: ProductListOut, **ERRORS}, summary="List products")
def product_list(request: HttpRequest) -> dict:
    """Every active product with its live delivery time (one stock query for all)."""
    products = active_products()
    stock = stock_by_denomination(product_ids=[p.pk for p in products])
    return {"results": [product_out(p, stock.get(p.pk, {})) for p in products]}


@router.get(
    "/{id}",
    response={200: ProductOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Get a product",
)
def product_detail(request: HttpRequest, id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict:
    """One active product; an unknown or inactive id answers 404."""
    product = _product(id)
    stock = stock_by_denomination(product_ids=[product.pk])
    return product_out(product, stock.get(product.pk, {}))


@router.get(
    "/{id}/availability",
    response={200: AvailabilityOut, 400: ErrorOut, 404: ErrorOut, **ERRORS},
    summary="Check availability",
)
def product_availability(
    request: HttpRequest,
    id: Annotated[int, Path(ge=1, le=MAX_ID)],
    denomination: Annotated[DenominationQuery, Query(example="25.00")],
    quantity: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> dict:
    """Whether inventory covers `quantity` units of `denomination` right now.

    `available` true means an order placed now is fulfilled from stock
    (delivery_time INSTANT); otherwise it goes to the vendor (DELAYED).
    """
    product = _product(id)
    value = denomination_check(product=product, denomination=denomination)
    units = quantity_check(product=product, quantity=quantity)
    stock = available_stock(product_id=product.pk, denomination=value)
    covered = stock >= units
    return {
        "product_id": product.pk,
        "denomination": money_text(value),
        "quantity": units,
        "available": covered,
        "available_units": stock,
        "delivery_time": DeliveryTime.INSTANT if covered else DeliveryTime.DELAYED,
    }
