"""Staff second-factor pages: verify (sign-in and step-up), enrol an authenticator app,
recovery codes, the security page (passkeys), and the locked-out page.

The rules (who is asked when, what counts as a failure) are in stepup.py; the
devices and their audit events in orders/services/second_factor.py.
"""

from __future__ import annotations

from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_otp.plugins.otp_static.models import StaticToken
from django_otp_webauthn.models import WebAuthnCredential

from orders.dashboard.http import no_store
from orders.dashboard.stepup import (
    ENROLLED_KEY,
    safe_next,
    second_factor_enrolled,
    second_factor_used,
    step_up,
    step_up_due,
    verify_code,
)
from orders.logins import lockout_response
from orders.services.actors import Actor
from orders.services.second_factor import (
    Verified,
    has_second_factor,
    passkey_remove,
    recovery_codes_issue,
    second_factor_methods,
    totp_enrolment_begin,
    totp_enrolment_confirm,
    totp_secret_text,
)


def _next_of(request: HttpRequest) -> str:
    return safe_next(request, request.POST.get("next") or request.GET.get("next"))


def _to(view: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(view)}?{urlencode({'next': next_url})}")


@never_cache
@login_required
def second_factor_verify(request: HttpRequest) -> HttpResponse:
    """Prove the second factor: after the password at sign-in, or to step up. A code
    from the authenticator app, a recovery code, or a passkey (the library's script)."""
    next_url = _next_of(request)
    methods = second_factor_methods(request.user)
    if not any(methods.values()):  # reset by an admin since this session began
        request.session[ENROLLED_KEY] = False
        if settings.STAFF_2FA_REQUIRED:
            return _to("second_factor_setup", next_url)
        return HttpResponseRedirect(next_url)
    signing_in = not request.user.is_verified()  # type: ignore[union-attr]
    if not signing_in and not step_up_due(request):
        return HttpResponseRedirect(next_url)
    error = ""
    if request.method == "POST":
        outcome = verify_code(
            request, request.POST.get("code", ""), purpose="sign_in" if signing_in else "step_up"
        )
        if isinstance(outcome, HttpResponse):
            return outcome
        if outcome is not None:
            left = StaticToken.objects.filter(device__user=request.user).count()
            if outcome.method == "recovery" and left <= 2:
                messages.warning(
                    request,
                    f"{left} recovery code(s) left: make a new set on your Security page.",
                )
            return HttpResponseRedirect(next_url)
        error = "That code is not valid. Enter the current code from your app, or a recovery code."
    context = {
        "methods": methods,
        "next": next_url,
        "error": error,
        "signing_in": signing_in,
        "window_minutes": settings.STEP_UP_SECONDS // 60,
    }
    return no_store(render(request, "twofactor/verify.html", context, status=400 if error else 200))


@never_cache
@login_required
def second_factor_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: the QR code and the secret as text, then a code from
    the app; then the recovery codes, shown once. Replacing an enrolled app needs the
    second factor first."""
    next_url = _next_of(request)
    if second_factor_enrolled(request) and (
        not request.user.is_verified() or step_up_due(request)  # type: ignore[union-attr]
    ):
        back = f"{reverse('second_factor_setup')}?{urlencode({'next': next_url})}"
        return _to("second_factor_verify", back)
    device = totp_enrolment_begin(user=request.user)
    error = ""
    if request.method == "POST":
        actor = Actor.for_request(request)
        confirmed = totp_enrolment_confirm(
            user=request.user, token=request.POST.get("code", ""), actor=actor
        )
        if confirmed is not None:
            first = not has_recovery_codes(request.user)
            second_factor_used(request, Verified(confirmed, "app"), purpose="enrol")
            if first:
                codes = recovery_codes_issue(user=request.user, actor=actor)
                return _recovery_page(request, codes, next_url=next_url)
            return HttpResponseRedirect(next_url)
        error = "That code does not match. Check the time on your phone and try the next code."
    context = {
        "qr_data_uri": segno.make(device.config_url, error="m").svg_data_uri(scale=5),
        "secret_text": totp_secret_text(device),
        "issuer": settings.OTP_TOTP_ISSUER,
        "next": next_url,
        "error": error,
        "required": settings.STAFF_2FA_REQUIRED,
    }
    return no_store(render(request, "twofactor/setup.html", context, status=400 if error else 200))


def has_recovery_codes(user: Any) -> bool:
    return StaticToken.objects.filter(device__user=user).exists()


def _recovery_page(request: HttpRequest, codes: list[str], *, next_url: str) -> HttpResponse:
    context = {"codes": codes, "next": next_url}
    return no_store(render(request, "twofactor/recovery_codes.html", context))


@never_cache
@require_POST
@login_required
@step_up
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    """A new set of recovery codes (the old set stops working), shown once."""
    codes = recovery_codes_issue(user=request.user, actor=Actor.for_request(request))
    return _recovery_page(request, codes, next_url=reverse("second_factor_security"))


@never_cache
@require_GET
@login_required
def second_factor_security(request: HttpRequest) -> HttpResponse:
    """The signed-in user's second factors: app, passkeys (add, remove), recovery codes."""
    user = request.user
    context = {
        "methods": second_factor_methods(user),
        "passkeys": WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by(
            "created_at"
        ),
        "recovery_left": StaticToken.objects.filter(device__user=user).count(),
        "step_up_due": step_up_due(request),
        "verify_url": f"{reverse('second_factor_verify')}?"
        + urlencode({"next": reverse("second_factor_security")}),
        "enrolled": has_second_factor(user),
    }
    return no_store(render(request, "twofactor/security.html", context))


@never_cache
@require_POST
@login_required
@step_up
def passkey_delete(request: HttpRequest, passkey_id: int) -> HttpResponse:
    passkey_remove(user=request.user, passkey_id=passkey_id, actor=Actor.for_request(request))
    request.session.pop(ENROLLED_KEY, None)
    return HttpResponseRedirect(reverse("second_factor_security"))


@never_cache
@require_GET
def second_factor_locked(request: HttpRequest) -> HttpResponse:
    """Where a sign-in locked by wrong codes lands (signed out by then)."""
    return lockout_response(request, None, None)


def admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """The Django admin signs in through the staff sign-in (password, then second factor)."""
    next_url = safe_next(request, request.GET.get("next"), default=reverse("admin:index"))
    return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': next_url})}")
