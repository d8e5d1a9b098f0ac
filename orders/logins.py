"""Sign-in throttling glue for django-axes: client address, the lockout page,
the lockout audit receiver and an audited unlock in the admin.

Wired in settings (AXES_CLIENT_IP_CALLABLE, AXES_LOCKOUT_CALLABLE) and in
OrdersConfig.ready (the receiver and the admin).
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.attempts import get_cool_off_threshold
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from orders.addresses import client_address
from orders.services.actors import Actor
from orders.services.logins import login_attempts_clear, login_lockout_record


def client_ip(request: HttpRequest) -> str | None:
    """The address sign-in failures are counted against: the client's address as
    everything else records it (orders/addresses.py). Behind a proxy list it in
    TRUSTED_PROXIES, or every user shares its address and five failures lock out all.
    """
    return client_address(request)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """The page a locked-out sign-in gets (429); the admin signs in on the same page. An
    htmx request (a wrong step-up code that locked the account) is sent there whole."""
    if request.headers.get("HX-Request") == "true":
        return HttpResponse(status=204, headers={"HX-Redirect": reverse("second_factor_locked")})
    if request.content_type == "application/json":  # a passkey ceremony's script
        detail = "Too many failed attempts: sign-in is locked and you have been signed out."
        return JsonResponse({"detail": detail, "code": "locked_out"}, status=429)
    context: dict[str, Any] = {
        "lockout_minutes": int(settings.AXES_COOLOFF_TIME.total_seconds() // 60),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }
    return render(request, "registration/locked_out.html", context, status=429)


def on_user_locked_out(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kw: Any
) -> None:
    """django-axes refused or locked a sign-in: audit it (once per lockout)."""
    actor = Actor(
        label="anonymous",
        ip_address=ip_address,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
    )
    login_lockout_record(
        username=username or "",
        actor=actor,
        since=get_cool_off_threshold(request),
        path=request.path,
    )


class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
    """django-axes' failed sign-in records; deleting them (or "Unlock") unlocks, audited."""

    actions = ["unlock", "cleanup_expired_attempts"]

    @admin.action(description="Unlock: clear the selected failed sign-ins", permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        cleared = login_attempts_clear(
            attempt_ids=list(queryset.values_list("pk", flat=True)),
            actor=Actor.for_request(request),
        )
        self.message_user(request, f"Unlocked: {cleared} failed sign-in records cleared.")

    def delete_model(self, request: HttpRequest, obj: AccessAttempt) -> None:
        login_attempts_clear(attempt_ids=[obj.pk], actor=Actor.for_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AccessAttempt]) -> None:
        login_attempts_clear(
            attempt_ids=list(queryset.values_list("pk", flat=True)),
            actor=Actor.for_request(request),
        )


def connect() -> None:
    """Hook the lockout receiver and the audited admin (admin autodiscovery ran before)."""
    user_locked_out.connect(on_user_locked_out, dispatch_uid="orders.logins.audit_lockout")
    if admin.site.is_registered(AccessAttempt):
        admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, AuditedAccessAttemptAdmin)
