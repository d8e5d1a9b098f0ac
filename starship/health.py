"""Health endpoints for load balancers and monitoring.

`/healthz` is liveness: the process answers, nothing else is touched (no
database, no cache), so a restart is never triggered by a dependency's
outage. `/readyz` is readiness: `orders.selectors.health.readiness()` as JSON,
200 when the host can serve, 503 when the database, cache or task engine is
unreachable; background work past its limits shows in `warnings` with 200.
Both are GET-only, never cached, and need no sign-in (they reveal counts and
ages, never an order, a person or a secret). `/metrics` is Prometheus text for
a bearer of METRICS_TOKEN (`orders.metrics`).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from orders import metrics
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


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for `Authorization: Bearer <METRICS_TOKEN>`; 404
    while no token is configured, 401 for a missing or wrong one."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are not enabled.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
