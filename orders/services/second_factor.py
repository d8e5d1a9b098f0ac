"""Staff second factors: enrolment, verification, recovery codes and resets, audited.

The devices are django-otp's (an authenticator app: `SealedTOTPDevice`; recovery
codes: a StaticDevice whose tokens are digests; passkeys: django-otp-webauthn's
WebAuthnCredential). No seed and no recovery code is stored as it is shown, and
no event carries one. Counting wrong codes against the sign-in limit is the
sign-in's business (orders/dashboard/stepup.py), not this module's.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp_webauthn.models import WebAuthnCredential

from orders.errors import ValidationFailed
from orders.models import SealedTOTPDevice
from orders.models.staff import second_factor_digest
from orders.services.actors import Actor
from orders.services.audit import audit_record

ENROLLED = "auth.second_factor_enrolled"
VERIFIED = "auth.second_factor_verified"
RECOVERY_CODES_ISSUED = "auth.recovery_codes_issued"
RESET = "auth.second_factor_reset"
REMOVED = "auth.second_factor_removed"

APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


def has_second_factor(user: Any) -> bool:
    """Whether `user` has enrolled any second factor (app, passkey or recovery codes)."""
    return bool(user.is_authenticated and user_has_device(user, confirmed=True))


def second_factor_methods(user: Any) -> dict[str, bool]:
    """Which kinds of second factor `user` can use now."""
    return {
        "app": SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "passkey": WebAuthnCredential.objects.filter(user=user, confirmed=True).exists(),
        "recovery": StaticToken.objects.filter(device__user=user, device__confirmed=True).exists(),
    }


def totp_enrolment_begin(*, user: Any) -> SealedTOTPDevice:
    """The unconfirmed authenticator-app device `user` is enrolling (one per user: a
    reload of the page shows the same secret)."""
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = SealedTOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return device


def totp_secret_text(device: SealedTOTPDevice) -> str:
    """The secret for manual entry, in groups of four base32 characters."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _normalised(token: str) -> str:
    return "".join(token.split()).replace("-", "").lower()


@transaction.atomic
def totp_enrolment_confirm(*, user: Any, token: str, actor: Actor) -> SealedTOTPDevice | None:
    """Confirm the app being enrolled with a code it shows; None when the code is wrong.
    Any other app `user` had is replaced: one app per user."""
    device = SealedTOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token(_normalised(token)):
        return None
    SealedTOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(action=ENROLLED, actor=actor, data={"user": user.pk, "method": "app"})
    return device


@transaction.atomic
def recovery_codes_issue(*, user: Any, actor: Actor) -> list[str]:
    """A new set of single-use recovery codes for `user` (the old set stops working).
    The codes exist only in the return value; the database keeps their digests."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [secrets.token_hex(5) for _ in range(settings.RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=_recovery_digest(code)) for code in codes]
    )
    audit_record(
        action=RECOVERY_CODES_ISSUED, actor=actor, data={"user": user.pk, "count": len(codes)}
    )
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def _recovery_digest(code: str) -> str:
    return second_factor_digest("recovery", _normalised(code).encode()).hex()[:16]


@dataclass(frozen=True)
class Verified:
    device: Device
    method: str  # "app" | "recovery" | "passkey"


def second_factor_check(*, user: Any, token: str) -> Verified | None:
    """The device `token` is a current code of: the authenticator app (six digits) or
    one unused recovery code, which this uses up (one DELETE: two requests racing
    with the same code cannot both succeed). None when it is neither."""
    value = _normalised(token)
    if not value:
        return None
    # Six digits: the app. A recovery code is ten hex digits, which may all be decimal.
    if value.isdigit() and len(value) <= 8:
        for device in SealedTOTPDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(value):
                return Verified(device, "app")
        return None
    static = StaticDevice.objects.filter(user=user, confirmed=True).first()
    if static is None:
        return None
    used, _ = StaticToken.objects.filter(device=static, token=_recovery_digest(value)).delete()
    return Verified(static, "recovery") if used else None


def second_factor_verified_record(*, user: Any, method: str, purpose: str, actor: Actor) -> None:
    """Audit a second factor used: at sign-in or to step up for a sensitive action."""
    data: dict[str, Any] = {"user": user.pk, "method": method, "purpose": purpose}
    if method == "recovery":
        data["recovery_codes_left"] = StaticToken.objects.filter(device__user=user).count()
    audit_record(action=VERIFIED, actor=actor, data=data)


def passkey_registered_record(*, user: Any, actor: Actor) -> None:
    audit_record(action=ENROLLED, actor=actor, data={"user": user.pk, "method": "passkey"})


@transaction.atomic
def passkey_remove(*, user: Any, passkey_id: int, actor: Actor) -> bool:
    """Remove one of `user`'s own passkeys."""
    removed, _ = WebAuthnCredential.objects.filter(user=user, pk=passkey_id).delete()
    if removed:
        audit_record(
            action=REMOVED,
            actor=actor,
            data={"user": user.pk, "method": "passkey", "passkey": passkey_id},
        )
    return bool(removed)


@transaction.atomic
def second_factor_reset(*, user: Any, actor: Actor, reason: str) -> int:
    """Remove every second factor of `user` (a lost phone): they enrol again at their
    next sign-in. Audited with the reason; returns how many devices went."""
    if not reason.strip():
        raise ValidationFailed("Say why the second factor is reset.", field="reason")
    removed = 0
    for model in (SealedTOTPDevice, StaticDevice, WebAuthnCredential):
        devices = model.objects.filter(user=user)
        removed += devices.filter(confirmed=True).count()
        devices.delete()
    audit_record(
        action=RESET,
        actor=actor,
        reason=reason,
        data={"user": user.pk, "username": user.get_username(), "devices": removed},
    )
    return removed
