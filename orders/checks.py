"""System checks for production configuration (shown by `check --deploy`)."""

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def voucher_keys_configured(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if settings.VOUCHER_KEYS and settings.VOUCHER_FINGERPRINT_KEY:
        return []
    return [
        Warning(
            "VOUCHER_KEYS and VOUCHER_FINGERPRINT_KEY are not set; a development keyring "
            "generated on disk would encrypt vouchers.",
            hint="Set both from your secret store (see README, Configuration).",
            id="orders.W001",
        )
    ]
