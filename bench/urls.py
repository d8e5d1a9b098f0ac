"""Benchmark URLs: the project's own, plus the bare-Django baseline view.

/bench/constant.json is the floor an API request is compared with: a plain
function view returning constant JSON of about the size of an order detail,
through the same gunicorn, middleware and settings, with no database query.
/bench/constant-bulk.json is the same for a 10,000-unit order.
"""

import functools

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from starship.urls import urlpatterns as project_urlpatterns

# The shape and size of GET /api/v1/orders/{id} for a delivered one-unit order
# (docs/api.md, step 7). Made-up values, not a voucher.
CONSTANT_ORDER = {
    "id": 12345,
    "reference_code": "ORD-ABC123",
    "transaction_id": 789,
    "amount": "25.00",
    "product_id": 1001,
    "denomination": "25.00",
    "quantity": 1,
    "discount": "0.00",
    "vouchers": [
        {
            "card_number": "0000000000000000",
            "pin_code": "0000",
            "claim_url": None,
            "voucher_reference_number": "REF-VOUCHER-123",
            "expires_at": "2030-12-31T23:59:59Z",
        }
    ],
    "status": "DELIVERED",
    "placed_at": "2024-01-15T10:30:00Z",
    "sub_status": "INVENTORY_FULFILLED",
    "currency": "USD",
    "delivery_time": "INSTANT",
    "face_value": "25.00",
    "fees": "0.00",
    "taxes": "0.00",
    "wallet_currency": "USD",
    "wallet_amount": "25.00",
    "customer": {"name": "Ada Lovelace", "email": "ada@example.com", "phone": ""},
    "items": [{"position": 1, "status": "DELIVERED", "recharge_status": None}],
}


MAX_BULK_UNITS = 10_000


@functools.cache
def constant_bulk_order(units: int) -> dict:
    """The same for an order of `units` units: the floor of a bulk order's detail read."""
    return {
        **CONSTANT_ORDER,
        "quantity": units,
        "vouchers": CONSTANT_ORDER["vouchers"] * units,
        "items": [
            {"position": n, "status": "DELIVERED", "recharge_status": None}
            for n in range(1, units + 1)
        ],
    }


@require_GET
def constant_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(CONSTANT_ORDER)


@require_GET
def constant_bulk_json(request: HttpRequest) -> JsonResponse:
    """CONSTANT_ORDER with ?units= (default and at most 10,000) vouchers and items,
    serialised on every request."""
    try:
        units = min(MAX_BULK_UNITS, max(1, int(request.GET.get("units", MAX_BULK_UNITS))))
    except ValueError:
        units = MAX_BULK_UNITS
    return JsonResponse(constant_bulk_order(units))


urlpatterns = [
    path("bench/constant.json", constant_json, name="bench-constant-json"),
    path("bench/constant-bulk.json", constant_bulk_json, name="bench-constant-bulk-json"),
    *project_urlpatterns,
]
