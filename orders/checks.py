"""System checks for production configuration (shown by `check --deploy`)."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


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


@register()
def vendor_adapters_importable(app_configs: Any, **kwargs: Any) -> list[Error]:
    """Every adapter in the registry (code + VENDOR_ADAPTERS) imports and has place/fetch."""
    from orders.vendors.registry import adapter_problems

    try:
        problems = adapter_problems()
    except ImproperlyConfigured as exc:
        problems = [str(exc)]
    return [
        Error(problem, hint="Fix VENDOR_ADAPTERS (key=dotted.path.Class).", id="orders.E010")
        for problem in problems
    ]


@register(Tags.security, deploy=True)
def audit_key_configured(app_configs: Any, **kwargs: Any) -> list[Error]:
    if settings.AUDIT_KEY or settings.DEBUG:
        return []
    return [
        Error(
            "AUDIT_KEY is not set; the audit chains would be keyed with a development key "
            "generated on disk beside the code.",
            hint="Set AUDIT_KEY=kid:<base64 32 bytes> from your secret store (docs/deploy.md).",
            id="orders.E001",
        )
    ]


@register()
def trusted_proxies_valid(app_configs: Any, **kwargs: Any) -> list[Error]:
    """TRUSTED_PROXIES names addresses or CIDR networks only."""
    from orders.addresses import networks_parse
    from orders.errors import ValidationFailed

    try:
        networks_parse(settings.TRUSTED_PROXIES, field="TRUSTED_PROXIES")
    except ValidationFailed as exc:
        return [
            Error(
                f"TRUSTED_PROXIES: {exc.message}",
                hint="A comma-separated list of IPs or CIDRs, e.g. 10.0.0.0/8,2001:db8::1.",
                id="orders.E020",
            )
        ]
    return []
