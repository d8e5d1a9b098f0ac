"""Staff second factors in tests: enrol an authenticator app, and the codes it would show."""

from __future__ import annotations

from typing import Any

from django_otp.oath import TOTP

from orders.models import SealedTOTPDevice
from orders.services.actors import Actor
from orders.services.second_factor import recovery_codes_issue


def enrol_app(user: Any) -> SealedTOTPDevice:
    """A confirmed authenticator app for `user`, as the enrolment page leaves it."""
    return SealedTOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def enrol_recovery_codes(user: Any) -> list[str]:
    return recovery_codes_issue(user=user, actor=Actor.system("test"))


def app_code(device: SealedTOTPDevice) -> str:
    """The code the app shows now, or the next one if this one was used already
    (a code is accepted once; the device accepts one step ahead)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    step = max(totp.t(), device.last_t + 1)
    totp.time = step * device.step + device.t0
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: SealedTOTPDevice) -> str:
    """Six digits the app does not show now (nor one step either side)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    near = set()
    for offset in (-1, 0, 1, 2):
        totp.time = (totp.t() + offset) * device.step + device.t0
        near.add(f"{totp.token():06d}")
    return next(f"{n:06d}" for n in range(1000, 2000) if f"{n:06d}" not in near)


def enrol_recovery_code(user: Any, code: str) -> str:
    """One recovery code of a chosen value (as recovery_codes_issue stores it)."""
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    from orders.services.second_factor import _recovery_digest

    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=device, token=_recovery_digest(code))
    return f"{code[:5]}-{code[5:]}"
