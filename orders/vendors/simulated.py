"""The simulated vendor and mobile operator: the default adapters and the sandbox.

Deterministic per idempotency key: the same key always yields the same vendor
order and the same vouchers, so a retry never buys twice. Latency, transient
errors and rejections are tuned with VENDOR_SIM_LATENCY_MS,
VENDOR_SIM_TRANSIENT_RATE and VENDOR_SIM_REJECT_RATE. A sandbox `scenario`
(see docs/sandbox.md) forces one outcome and switches the random rates off.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import time
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
# What `place` hands out: SIM-<20 hex>-<units accepted>.
_ORDER_REF = re.compile(r"SIM-[0-9A-F]{20}-([0-9]{1,4})")


def _digest(*parts: str) -> str:
    # Keyed so that a vendor reference shown in the dashboard does not reveal codes.
    message = ":".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _unit_share(hex_digits: str) -> float:
    return int(hex_digits[:8], 16) / 0x1_0000_0000


class _Simulation:
    def __init__(self, *, scenario: str | None = None, attempt: int = 0) -> None:
        self.scenario = scenario
        self.attempt = attempt

    def _latency(self) -> None:
        delay_ms = settings.VENDOR_SIM_LATENCY_MS
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)

    def _transient(self, what: str) -> None:
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
