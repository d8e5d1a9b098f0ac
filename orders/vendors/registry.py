"""The registry of vendor adapters: the only classes the fulfilment engine may call.

`Vendor.adapter` stores a registry key, never a Python path. Keys come from
code (BUILTIN_ADAPTERS) and from the `VENDOR_ADAPTERS` setting (key → dotted
path, read from the environment by settings.py only), so nobody can make the
worker import a module by typing its name into a form or a database row.
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from orders.vendors.base import VendorRejected

if TYPE_CHECKING:
    from orders.vendors.base import VendorAdapter

DEFAULT_ADAPTER = "simulated"
# key -> (label, dotted path); paths here are code, not input.
BUILTIN_ADAPTERS: dict[str, tuple[str, str]] = {
    DEFAULT_ADAPTER: ("Simulated vendor", "orders.vendors.simulated.SimulatedVendor"),
    "simulated-slow": (
        "Simulated vendor, slow (answers 'pending')",
        "orders.vendors.simulated.SlowSimulatedVendor",
    ),
}
logger = logging.getLogger(__name__)
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")


class UnknownVendorAdapter(VendorRejected):
    """A vendor names an unregistered adapter key: its orders fail, nothing is imported."""


def _configured() -> dict[str, tuple[str, str]]:
    extra = getattr(settings, "VENDOR_ADAPTERS", {}) or {}
    adapters = dict(BUILTIN_ADAPTERS)
    for key, path in extra.items():
        if not _KEY.match(key):
            raise ImproperlyConfigured(
                f"VENDOR_ADAPTERS: {key!r} is not a valid adapter key (lowercase letters, "
                "digits, '-' and '_', at most 50)."
            )
        if not path:
            raise ImproperlyConfigured(f"VENDOR_ADAPTERS: {key!r} needs key=dotted.path.Class.")
        if key in BUILTIN_ADAPTERS:
            raise ImproperlyConfigured(f"VENDOR_ADAPTERS: {key!r} is a built-in adapter key.")
        adapters[key] = (key, str(path))
    return adapters


def adapter_choices() -> list[tuple[str, str]]:
    """(key, label) of every registered adapter: the choices of Vendor.adapter."""
    return [(key, label) for key, (label, _path) in _configured().items()]


def adapter_keys() -> list[str]:
    return list(_configured())


@cache
def _load(path: str) -> type[VendorAdapter]:
    adapter_class: type[VendorAdapter] = import_string(path)
    return adapter_class


def adapter_class(*, key: str) -> type[VendorAdapter]:
    """The class registered under `key`; an unknown key raises UnknownVendorAdapter
    (a permanent vendor rejection) without importing anything."""
    entry = _configured().get(key)
    if entry is None:
        logger.error("Vendor adapter key %r is not registered; nothing imported", key[:60])
        raise UnknownVendorAdapter(
            f"vendor adapter {key[:60]!r} is not registered; an administrator must pick one of: "
            f"{', '.join(adapter_keys())}"
        )
    return _load(entry[1])


def adapter_problems() -> list[str]:
    """Registered adapters that cannot be imported or lack place/fetch (for system checks)."""
    problems = []
    for key, (_label, path) in _configured().items():
        try:
            found = _load(path)
        except ImportError as exc:
            problems.append(f"{key}: cannot import {path} ({type(exc).__name__})")
            continue
        if not all(callable(getattr(found, name, None)) for name in ("place", "fetch")):
            problems.append(f"{key}: {path} has no place() and fetch()")
    return problems
