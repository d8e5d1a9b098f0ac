"""Health endpoints for load balancers and monitoring.

`/healthz` is liveness: the process answers, nothing else is touched (no
database, no cache), so a restart is never triggered by a dependency's
outage. `/readyz` is readiness: `orders.selectors.health.readiness()` as JSON,
200 when the host can serve, 503 when the database, cache or task engine is
unreachable; background work past its limits shows in `warnings` with 200.
Both are GET-only, never cached, and need no sign-in (they reveal counts and
ages, never an order, a person or a secret).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from orders.selectors.health import FAIL, readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready = readiness()
    return JsonResponse(ready.as_json(), status=503 if ready.status == FAIL else 200)
