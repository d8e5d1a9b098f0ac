"""Passkeys and security keys (django-otp-webauthn) as the staff second factor.

The library's ceremonies, with this product's rules: the relying party is the
host staff sign in on; adding a passkey needs a recent second factor (step-up);
a passkey used is audited and opens the step-up window; a failed assertion
counts as a failed sign-in, like a wrong code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from orders.dashboard.stepup import (
    ENROLLED_KEY,
    second_factor_failed,
    second_factor_locked,
    second_factor_used,
    step_up_due,
)
from orders.services.actors import Actor
from orders.services.second_factor import Verified, passkey_registered_record


def relying_party_id(request: HttpRequest) -> str:
    """WEBAUTHN_RP_ID, else the host of this request (validated by ALLOWED_HOSTS)."""
    return settings.WEBAUTHN_RP_ID or request.get_host().rsplit(":", 1)[0]


class PasskeyHelper(WebAuthnHelper):
    def get_allowed_origins(self) -> list[str]:
        """WEBAUTHN_ORIGINS, else the origin of this request."""
        if settings.WEBAUTHN_ORIGINS:
            return list(settings.WEBAUTHN_ORIGINS)
        return [f"{self.request.scheme}://{self.request.get_host()}"]


class StepUpFirst(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = "Confirm with your current second factor before adding a passkey."
    default_code = "step_up_required"


class SignInLocked(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_detail = "Too many failed attempts: you have been signed out."
    default_code = "locked_out"


class _RegistrationRules:
    request: HttpRequest

    def check_can_register(self) -> None:
        if step_up_due(self.request):
            raise StepUpFirst()


class PasskeyRegistrationBegin(_RegistrationRules, BeginCredentialRegistrationView):
    pass


class PasskeyRegistrationComplete(_RegistrationRules, CompleteCredentialRegistrationView):
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(*args, **kwargs)
        self.request.session[ENROLLED_KEY] = True
        passkey_registered_record(user=self.request.user, actor=Actor.for_request(self.request))
        return response


def _may_authenticate(request: HttpRequest) -> None:
    """A passkey is the second step of a password sign-in, never the only one."""
    if not request.user.is_authenticated:
        raise exceptions.PasswordlessLoginDisabled()
    if second_factor_locked(request):
        raise SignInLocked()


class PasskeyAuthenticationBegin(BeginCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        _may_authenticate(self.request)


class PasskeyAuthenticationComplete(CompleteCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        _may_authenticate(self.request)

    def complete_auth(self, device: Any) -> None:
        purpose = "step_up" if self.request.user.is_verified() else "sign_in"
        second_factor_used(self.request, Verified(device, "passkey"), purpose=purpose)

    def handle_exception(self, exc: Exception) -> HttpResponse:
        response = super().handle_exception(exc)
        counted = isinstance(exc, exceptions.OTPWebAuthnApiError) and not isinstance(
            exc, SignInLocked | exceptions.PasswordlessLoginDisabled | exceptions.InvalidState
        )
        if counted and self.request.user.is_authenticated and second_factor_failed(self.request):
            locked = SignInLocked()
            return JsonResponse({"detail": str(locked), "code": locked.code}, status=429)
        return response


urlpatterns = [
    path(
        "registration/begin/",
        PasskeyRegistrationBegin.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        PasskeyRegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        PasskeyAuthenticationBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        PasskeyAuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
