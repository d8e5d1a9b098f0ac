"""The second factor at sign-in, step-up for sensitive actions, and the failures it counts.

`SecondFactorMiddleware` sends a signed-in user who has enrolled a second factor
(or must enrol one: STAFF_2FA_REQUIRED) to verify or enrol before any page but
the sign-in pages. `step_up` wraps a sensitive POST view: unless a second factor
was used within STEP_UP_SECONDS it answers with a challenge (inline for htmx,
a page otherwise) that re-posts the same form with a code and then runs the view.
Every wrong code or failed passkey assertion counts as a failed sign-in
(django-axes), so the sign-in limit locks the account either way.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django_otp import login as otp_login

from orders.dashboard.http import no_store
from orders.services.actors import Actor
from orders.services.second_factor import (
    Verified,
    has_second_factor,
    second_factor_check,
    second_factor_methods,
    second_factor_verified_record,
)

ENROLLED_KEY = "second_factor_enrolled"  # session: whether the user has a second factor
USED_AT_KEY = "second_factor_at"  # session: when a second factor was last used (epoch s)
STEP_UP_FIELD = "second_factor_code"

# Paths a signed-in user reaches before the second factor: sign-in, sign-out, the
# second-factor pages themselves; and what never uses the staff session.
# The gift link page is for its recipient, never a staff session (nor a ?next= with its token).
_EXEMPT_PREFIXES = ("/accounts/", "/api/", "/gift/", "/static/", "/healthz", "/readyz", "/metrics")


def safe_next(request: HttpRequest, candidate: str | None, *, default: str = "") -> str:
    """`candidate` if it is a URL on this site, else `default` (or the dashboard)."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    # By header: this runs in the middleware, before django-htmx's sets request.htmx.
    if request.headers.get("HX-Request") == "true":
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


def _current_page(request: HttpRequest) -> str:
    """The page the user is on: where to come back to after verifying."""
    if request.headers.get("HX-Request") == "true" and request.headers.get("HX-Current-URL"):
        current = urlsplit(request.headers["HX-Current-URL"])
        return current.path + (f"?{current.query}" if current.query else "")
    if request.method == "GET":
        return request.get_full_path()
    referer = urlsplit(request.headers.get("Referer", ""))
    return safe_next(request, referer.path + (f"?{referer.query}" if referer.query else ""))


def second_factor_enrolled(request: HttpRequest) -> bool:
    """Whether the signed-in user has a second factor (remembered in the session)."""
    enrolled = request.session.get(ENROLLED_KEY)
    if enrolled is None:
        enrolled = has_second_factor(request.user)
        request.session[ENROLLED_KEY] = enrolled
    return bool(enrolled)


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A new sign-in: note whether a second factor is due; no step-up carries over."""
    if request is not None and hasattr(request, "session"):
        request.session[ENROLLED_KEY] = has_second_factor(user)
        request.session.pop(USED_AT_KEY, None)


def connect() -> None:
    user_logged_in.connect(on_user_logged_in, dispatch_uid="orders.stepup.logged_in")


class SecondFactorMiddleware:
    """Verify (or enrol) the second factor before any staff page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_EXEMPT_PREFIXES):  # before the user: the API never loads one
            return self.get_response(request)
        user = request.user
        if user.is_authenticated and not user.is_verified():  # type: ignore[union-attr,attr-defined]
            if second_factor_enrolled(request):
                return _redirect(request, _with_next("second_factor_verify", request))
            if settings.STAFF_2FA_REQUIRED:
                return _redirect(request, _with_next("second_factor_setup", request))
        return self.get_response(request)


def _with_next(view: str, request: HttpRequest) -> str:
    return f"{reverse(view)}?{urlencode({'next': _current_page(request)})}"


# --- Using a second factor -------------------------------------------------------


def second_factor_used(request: HttpRequest, verified: Verified, *, purpose: str) -> None:
    """The user proved the second factor now: the session is verified, the step-up
    window opens, and the event is audited."""
    if not request.user.is_verified():  # type: ignore[union-attr]
        request.session.cycle_key()  # a new session id for the fully signed-in session
    otp_login(request, verified.device)
    request.session[USED_AT_KEY] = int(time.time())
    request.session[ENROLLED_KEY] = True
    second_factor_verified_record(
        user=request.user, method=verified.method, purpose=purpose, actor=Actor.for_request(request)
    )


def _credentials(request: HttpRequest) -> dict[str, str]:
    return {getattr(settings, "AXES_USERNAME_FORM_FIELD", "username"): request.user.get_username()}


def second_factor_locked(request: HttpRequest) -> bool:
    """Whether sign-in is locked for this user or address (django-axes' counters)."""
    return AxesProxyHandler.is_locked(request, _credentials(request))


def second_factor_failed(request: HttpRequest) -> bool:
    """Count a wrong code or a failed passkey assertion as a failed sign-in. True when
    that locked the account: the session is signed out (the caller sends the user
    to the locked page)."""
    user_login_failed.send(sender=__name__, credentials=_credentials(request), request=request)
    if getattr(request, "axes_locked_out", False) or second_factor_locked(request):
        logout(request)
        return True
    return False


def locked_response(request: HttpRequest) -> HttpResponse:
    return _redirect(request, reverse("second_factor_locked"))


def verify_code(request: HttpRequest, code: str, *, purpose: str) -> Verified | HttpResponse | None:
    """Check a code the signed-in user typed: Verified, None (wrong, counted), or the
    response that sends a now locked-out user away."""
    if second_factor_locked(request):
        logout(request)
        return locked_response(request)
    verified = second_factor_check(user=request.user, token=code)
    if verified is None:
        return locked_response(request) if second_factor_failed(request) else None
    second_factor_used(request, verified, purpose=purpose)
    return verified


# --- Step-up -----------------------------------------------------------------------


def step_up_due(request: HttpRequest) -> bool:
    """Whether a sensitive action must ask for the second factor first: the user has
    one and has not used it within STEP_UP_SECONDS. A user with none (allowed only
    with STAFF_2FA_REQUIRED=0) is not asked."""
    if not second_factor_enrolled(request):
        return False
    used_at = request.session.get(USED_AT_KEY)
    return used_at is None or time.time() - used_at > settings.STEP_UP_SECONDS


def _challenge(request: HttpRequest, *, error: str = "") -> HttpResponse:
    htmx = getattr(request, "htmx", None)
    target = (htmx.target if htmx else "") or "step-up"
    replay = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in {"csrfmiddlewaretoken", STEP_UP_FIELD}
        for value in values
    ]
    context = {
        "action_url": request.get_full_path(),
        "replay": replay,
        "target": target,
        "error": error,
        "field": STEP_UP_FIELD,
        "methods": second_factor_methods(request.user),
        "verify_url": _with_next("second_factor_verify", request),
        "window_minutes": settings.STEP_UP_SECONDS // 60,
    }
    template = "twofactor/step_up.html#challenge" if htmx else "twofactor/step_up.html"
    return no_store(render(request, template, context))


def step_up(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A sensitive POST: run the view only with a second factor used within STEP_UP_SECONDS;
    otherwise ask for a code (the challenge re-posts the same form) and then run it.
    Other methods pass (the admin's change forms answer GET and POST)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST" or not step_up_due(request):
            return view(request, *args, **kwargs)
        code = request.POST.get(STEP_UP_FIELD)
        if code is None:
            return _challenge(request)
        outcome = verify_code(request, code, purpose="step_up")
        if isinstance(outcome, HttpResponse):
            return outcome
        if outcome is None:
            return _challenge(request, error="That code is not valid. Try the current one.")
        return view(request, *args, **kwargs)

    return wrapper
