"""Benchmark URLs: the project's own, plus the bare-Django baseline view.

/bench/constant.json is the floor an API request is compared with: a plain
function view returning constant JSON of about the size of an order detail,
through the same gunicorn, middleware and settings, with no database query.
"""

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


@require_GET
def constant_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(CONSTANT_ORDER)


urlpatterns = [
    path("bench/constant.json", constant_json, name="bench-constant-json"),
    *project_urlpatterns,
]
