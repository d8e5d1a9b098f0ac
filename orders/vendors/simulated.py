"""The simulated vendor and mobile operator: the default adapters and the sandbox.

Deterministic per idempotency key: the same key always yields the same vendor
order and the same vouchers, so a retry never buys twice. Latency, transient
errors and rejections are tuned with VENDOR_SIM_LATENCY_MS,
VENDOR_SIM_TRANSIENT_RATE and VENDOR_SIM_REJECT_RATE. A sandbox `scenario`
(see docs/sandbox.md) forces one outcome and switches the random rates off.

`SlowSimulatedVendor` (registry key "simulated-slow") answers every call
"pending": its orders wait, retried with backoff, until the retry window
closes. `scripted` lets code in this process (seed_demo) act out a vendor's
history through the real fulfilment engine.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal

from django.conf import settings

from orders.enums import DeliveryType, RechargeStatus
from orders.vendors.base import (
    RechargeResult,
    VendorOrder,
    VendorProduct,
    VendorRejected,
    VendorTransientError,
    VendorVoucher,
)

# Sandbox scenarios, chosen by a reference_code prefix on test-mode orders.
DELAYED = "DELAYED"  # skip inventory; the vendor delivers
RETRY = "RETRY"  # the vendor fails transiently twice, then delivers
FAIL = "FAIL"  # the vendor rejects the order
PARTIAL = "PARTIAL"  # the vendor delivers the first unit and rejects the rest
SCENARIOS = (DELAYED, RETRY, FAIL, PARTIAL)
RETRY_FAILURES = 2
# Not sandbox scenarios: the slow vendor's answer, and a worker dying mid-call.
TIMEOUT = "TIMEOUT"  # every call answers "pending" (a transient error)
CRASH = "CRASH"  # the process stops while the vendor is asked (SimulatedCrash)
# What `scripted` may act out: DELAYED there means "the vendor delivers".
SCRIPTABLE = (DELAYED, FAIL, PARTIAL, TIMEOUT, CRASH)
_script: ContextVar[str | None] = ContextVar("simulated_script", default=None)
# What `place` hands out: SIM-<20 hex>-<units accepted>.
_ORDER_REF = re.compile(r"SIM-[0-9A-F]{20}-([0-9]{1,4})")


def _digest(*parts: str) -> str:
    # Keyed so that a vendor reference shown in the dashboard does not reveal codes.
    message = ":".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _unit_share(hex_digits: str) -> float:
    return int(hex_digits[:8], 16) / 0x1_0000_0000


class SimulatedCrash(BaseException):
    """The process "dies" in the middle of a vendor call (`scripted(CRASH)`).

    A BaseException, so the fulfilment engine does not catch it: the order is
    left exactly as a killed worker leaves it, in flight under its lease, for
    the recovery sweep to resume.
    """


@contextmanager
def scripted(scenario: str) -> Iterator[None]:
    """Within the block, simulated vendors and operators called by this thread act
    out `scenario` (one of SCRIPTABLE) at once, whatever the VENDOR_SIM_* settings;
    a sandbox order keeps its own scenario. Only code that runs fulfilment in its
    own process (seed_demo) can use it: the worker never enters it."""
    if scenario not in SCRIPTABLE:
        raise ValueError(f"cannot script {scenario!r}: one of {', '.join(SCRIPTABLE)}")
    token = _script.set(scenario)
    try:
        yield
    finally:
        _script.reset(token)


class _Simulation:
    # The scenario of every call when neither a sandbox order nor a script says otherwise.
    default_scenario: str | None = None

    def __init__(self, *, scenario: str | None = None, attempt: int = 0) -> None:
        script = _script.get()
        self.from_script = scenario is None and script is not None
        self.scenario = scenario or script or self.default_scenario
        self.attempt = attempt

    def _latency(self) -> None:
        delay_ms = settings.VENDOR_SIM_LATENCY_MS
        if delay_ms > 0 and not self.from_script:
            time.sleep(delay_ms / 1000)

    def _transient(self, what: str) -> None:
        if self.scenario == CRASH:
            raise SimulatedCrash(f"the process stopped while the {what} call was answered")
        if self.scenario == TIMEOUT:
            raise VendorTransientError(f"simulated {what}: still pending at the vendor, try later")
        if self.scenario == RETRY and self.attempt < RETRY_FAILURES:
            raise VendorTransientError(f"sandbox: simulated {what} timeout")
        if self.scenario is None:
            rate = float(settings.VENDOR_SIM_TRANSIENT_RATE)
            if rate > 0 and random.random() < rate:
                raise VendorTransientError(f"simulated {what} timeout")

    def _rejected(self, key: str) -> bool:
        if self.scenario is not None:
            return self.scenario == FAIL
        rate = float(settings.VENDOR_SIM_REJECT_RATE)
        return rate > 0 and _unit_share(_digest("reject", key)) < rate


class SimulatedVendor(_Simulation):
    """A gift-card supplier that answers like a real one, without buying anything."""

    def place(
        self,
        *,
        order_ref: str,
        idempotency_key: str,
        product: VendorProduct,
        denomination: Decimal,
        quantity: int,
    ) -> VendorOrder:
        self._latency()
        self._transient("vendor order")
        if self._rejected(idempotency_key):
            raise VendorRejected("vendor rejected the order (simulated: out of stock)")
        accepted = min(1, quantity) if self.scenario == PARTIAL else quantity
        ref = f"SIM-{_digest('order', idempotency_key)[:20].upper()}-{accepted}"
        reason = "" if accepted == quantity else "vendor could supply only part of the order"
        return VendorOrder(ref=ref, accepted=accepted, rejected_reason=reason)

    def fetch(self, *, vendor_order_ref: str, product: VendorProduct) -> list[VendorVoucher]:
        self._latency()
        self._transient("voucher fetch")
        match = _ORDER_REF.fullmatch(vendor_order_ref)
        if match is None:
            raise VendorRejected("unknown vendor order reference")
        accepted = int(match.group(1))
        return [self._voucher(vendor_order_ref, n, product) for n in range(1, accepted + 1)]

    @staticmethod
    def _voucher(ref: str, n: int, product: VendorProduct) -> VendorVoucher:
        h = _digest("voucher", ref, str(n))
        reference = f"{ref}-{n:03d}"
        if product.delivery_type == DeliveryType.URL:
            code = "-".join(h[i : i + 4].upper() for i in range(0, 16, 4))
            return VendorVoucher(
                card_number=code,
                claim_url=f"https://redeem.sim-vendor.example/c/{h[16:40]}",
                voucher_reference_number=reference,
            )
        digits = str(int(h[:24], 16)).rjust(16, "0")[-16:]
        return VendorVoucher(
            card_number=digits,
            pin_code=str(int(h[24:32], 16) % 10000).rjust(4, "0"),
            voucher_reference_number=reference,
        )


class SlowSimulatedVendor(SimulatedVendor):
    """A supplier that confirms nothing yet: every call answers "pending" (transient).

    Its orders wait in PENDING_REPROCESS, retried with backoff, until the retry
    window closes (then FAILED/REPROCESS_EXPIRED and refunded): open orders that
    the worker keeps trying and an agent can cancel or retry, or move to a
    faster vendor in the admin and retry.
    """

    default_scenario = TIMEOUT


class SimulatedOperator(_Simulation):
    """A mobile operator: a recharge is submitted, then confirmed or refused.

    Keys end in `-u<position>`; the PARTIAL scenario recharges unit 1 only.
    """

    def submit(
        self, *, idempotency_key: str, phone: str, amount: Decimal, currency: str
    ) -> RechargeResult:
        self._latency()
        self._transient("operator")
        ref = f"SIMOP-{_digest('recharge', idempotency_key)[:20].upper()}"
        if self._rejected(idempotency_key):
            return RechargeResult(ref, RechargeStatus.FAILED, "operator rejected the recharge")
        if self.scenario == PARTIAL and not idempotency_key.endswith("-u1"):
            return RechargeResult(ref, RechargeStatus.FAILED, "operator rejected the recharge")
        return RechargeResult(ref, RechargeStatus.DELIVERED)

    def confirm(self, *, ref: str) -> RechargeResult:
        self._latency()
        self._transient("operator confirmation")
        return RechargeResult(ref, RechargeStatus.RECHARGED)
