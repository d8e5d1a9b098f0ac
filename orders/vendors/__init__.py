"""Vendor adapters: the protocol (base), the simulated vendor, the registry, and how to pick one.

Orders placed with a test-mode credential never reach a real vendor: they use
the simulated vendor, with the outcome a `SANDBOX-…` reference_code forces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orders.vendors.base import OperatorAdapter, VendorAdapter
from orders.vendors.registry import UnknownVendorAdapter, adapter_class
from orders.vendors.simulated import SCENARIOS, SimulatedOperator, SimulatedVendor

if TYPE_CHECKING:
    from orders.models import Order, Vendor

SANDBOX_PREFIX = "SANDBOX-"


def is_sandbox(order: Order) -> bool:
    """Placed with a test-mode credential."""
    from orders.models import ApiCredential

    return order.credential is not None and order.credential.mode == ApiCredential.Mode.TEST


def sandbox_scenario(order: Order) -> str | None:
    """The forced outcome of a test-mode order (`SANDBOX-<SCENARIO>-…`), if any."""
    if not is_sandbox(order):
        return None
    code = order.reference_code.upper()
    for scenario in SCENARIOS:
        if code.startswith(f"{SANDBOX_PREFIX}{scenario}-"):
            return scenario
    return None


def get_adapter(vendor: Vendor, *, order: Order | None = None) -> VendorAdapter:
    """The registered adapter of `vendor` (Vendor.adapter is a registry key, never a
    path), or the sandbox for test orders; an unknown key raises UnknownVendorAdapter."""
    if order is not None and is_sandbox(order):
        return SimulatedVendor(scenario=sandbox_scenario(order), attempt=order.attempts)
    adapter: VendorAdapter = adapter_class(key=vendor.adapter)()
    return adapter


def get_operator(*, order: Order) -> OperatorAdapter:
    """The mobile operator for top-ups (simulated; sandbox scenarios apply)."""
    return SimulatedOperator(scenario=sandbox_scenario(order), attempt=order.attempts)


__all__ = [
    "UnknownVendorAdapter",
    "get_adapter",
    "get_operator",
    "is_sandbox",
    "sandbox_scenario",
]
