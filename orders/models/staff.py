"""Staff second factors: django-otp's TOTP device with its seed kept out of the database."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice


def second_factor_digest(purpose: str, value: bytes) -> bytes:
    """HMAC-SHA256 of `value` under a key derived from SECOND_FACTOR_KEY for `purpose`:
    what the database keeps instead of a TOTP seed or a recovery code."""
    key = hashlib.sha256(f"starship.second-factor.{purpose}:{settings.SECOND_FACTOR_KEY}".encode())
    return hmac.new(key.digest(), value, hashlib.sha256).digest()


class SealedTOTPDevice(TOTPDevice):
    """A TOTP device whose `key` column holds a random salt, not the seed.

    The seed the authenticator app holds is HMAC(secret key, salt): a copy of the
    database alone cannot compute a single code. Changing SECOND_FACTOR_KEY (which
    defaults to DJANGO_SECRET_KEY) therefore means every staff user enrols their app
    again (docs/decisions/0011-second-factor.md).
    """

    class Meta:
        proxy = True
        verbose_name = "authenticator app"

    @property
    def bin_key(self) -> bytes:
        return second_factor_digest("totp", bytes.fromhex(self.key))[:20]
