"""Catalog changes: products' price-relevant fields are audited, large changes need a checker.

Every change of a price-relevant field (PRICE_FIELDS) writes a PriceChange row
and an AuditEvent with before/after. A change is applied at once only while it
stays within the limits below, measured from the product's value before any
unapproved change of the last PRICE_CHANGE_WINDOW_HOURS (so ten small steps
count as one big one); otherwise it waits, PENDING, for a different user with
`orders.approve_price_change`:

- discount, fee and tax percentages: more than PRICE_CHANGE_APPROVAL_POINTS points;
- the fixed fee: more than PRICE_CHANGE_APPROVAL_FIXED_FEE (product currency);
- the largest order a partner can place (largest face value × bulk limit):
  growing more than PRICE_CHANGE_APPROVAL_FACTOR times;
- the currency: any change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from orders.errors import (
    NotFound,
    PermissionDenied,
    PriceChangeNotPending,
    PriceChangeOwnRequest,
    PriceChangeStale,
    ValidationFailed,
)
from orders.models import PriceChange, Product
from orders.services.actors import Actor
from orders.services.audit import audit_record

PERCENT_FIELDS = ("discount_percent", "fee_percent", "tax_percent")
ORDER_SIZE_FIELDS = ("denominations", "min_denomination", "max_denomination", "bulk_limit")
PRICE_FIELDS = ("currency", *ORDER_SIZE_FIELDS, *PERCENT_FIELDS, "fee_fixed")
# On a new product these are compared with the defaults; the rest is its definition.
NEW_PRODUCT_CHECKED = (*PERCENT_FIELDS, "fee_fixed")
APPROVE_PERMISSION = "orders.approve_price_change"


@dataclass(frozen=True)
class ProductSaved:
    """What a save did: the product as stored, and the price change it recorded."""

    product: Product
    price_change: PriceChange | None

    @property
    def pending(self) -> bool:
        return (
            self.price_change is not None and self.price_change.status == PriceChange.Status.PENDING
        )


def field_text(name: str, value: Any) -> Any:
    """A field's value as stored in PriceChange.changes and compared with: JSON, exact."""
    if value is None:
        return None
    if isinstance(value, models.Model):
        return value.pk
    field = Product._meta.get_field(name)
    if name == "denominations":
        return [str(v) for v in value] if isinstance(value, list) else value
    decimal_places = getattr(field, "decimal_places", None)
    if decimal_places is not None:
        try:
            return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-decimal_places)))
        except InvalidOperation:
            return str(value)
    if isinstance(value, int):
        return value
    return str(value)


def _value(name: str, text: Any) -> Any:
    field: Any = Product._meta.get_field(name)
    return field.to_python(text)


def _decimal(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return amount if amount.is_finite() else Decimal(0)


def _largest_order(values: dict[str, Any]) -> Decimal:
    if values["min_denomination"] is not None and values["max_denomination"] is not None:
        face = _decimal(values["max_denomination"])
    else:
        face = max((_decimal(v) for v in values["denominations"] or []), default=Decimal(0))
    return face * int(values["bulk_limit"] or 0)


def _baseline(*, product: Product, current: dict[str, Any]) -> dict[str, Any]:
    """Each price field's value before the unapproved changes of the window."""
    baseline = dict(current)
    cutoff = timezone.now() - timedelta(hours=settings.PRICE_CHANGE_WINDOW_HOURS)
    recent = PriceChange.objects.filter(
        product=product,
        status__in=[PriceChange.Status.APPLIED, PriceChange.Status.APPROVED],
        applied_at__gte=cutoff,
    ).order_by("-applied_at", "-id")
    settled: set[str] = set()
    for change in recent:
        for name, step in change.changes.items():
            if name in settled or name not in baseline:
                continue
            if change.status == PriceChange.Status.APPROVED:
                settled.add(name)  # a checker saw this value: count from here
            else:
                baseline[name] = _value(name, step["before"])
    return baseline


def price_change_reasons(
    *, baseline: dict[str, Any], proposed: dict[str, Any], new_product: bool = False
) -> list[str]:
    """Why moving from `baseline` to `proposed` needs a second approver (empty: it does not)."""
    reasons = []
    points = settings.PRICE_CHANGE_APPROVAL_POINTS
    for name in PERCENT_FIELDS:
        delta = abs(_decimal(proposed[name]) - _decimal(baseline[name]))
        if delta > points:
            reasons.append(
                f"{name} moves {delta} points from {field_text(name, baseline[name])} "
                f"(limit {points})"
            )
    fee_delta = abs(_decimal(proposed["fee_fixed"]) - _decimal(baseline["fee_fixed"]))
    if fee_delta > settings.PRICE_CHANGE_APPROVAL_FIXED_FEE:
        reasons.append(
            f"fee_fixed moves {fee_delta} from {field_text('fee_fixed', baseline['fee_fixed'])} "
            f"(limit {settings.PRICE_CHANGE_APPROVAL_FIXED_FEE})"
        )
    if new_product:
        return reasons
    if proposed["currency"] != baseline["currency"]:
        reasons.append(f"currency changes from {baseline['currency']} to {proposed['currency']}")
    before, after = _largest_order(baseline), _largest_order(proposed)
    factor = settings.PRICE_CHANGE_APPROVAL_FACTOR
    if after > before * factor:
        reasons.append(
            f"the largest order grows from {before} to {after} {proposed['currency']} "
            f"(more than {factor}×)"
        )
    return reasons


def _check(product: Product) -> None:
    from django.core.exceptions import ValidationError

    try:
        product.full_clean(validate_unique=False, validate_constraints=True)
    except ValidationError as exc:
        field = next(iter(exc.message_dict), None) if hasattr(exc, "error_dict") else None
        raise ValidationFailed("; ".join(exc.messages), field=field) from None


def _record(
    *,
    product: Product,
    changes: dict[str, dict[str, Any]],
    reasons: list[str],
    actor: Actor,
) -> PriceChange:
    now = timezone.now()
    pending = bool(reasons)
    change = PriceChange.objects.create(
        product=product,
        changes=changes,
        approval_reasons=reasons,
        status=PriceChange.Status.PENDING if pending else PriceChange.Status.APPLIED,
        requested_by_id=actor.user_id,
        requested_label=actor.label,
        requested_at=now,
        applied_at=None if pending else now,
    )
    audit_record(
        action="product.price_change_request" if pending else "product.price_change",
        actor=actor,
        data={
            "product_id": product.pk,
            "price_change_id": change.pk,
            "status": change.status,
            "changes": changes,
            "approval_reasons": reasons,
        },
    )
    return change


def _diff(product: Product, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changes = {}
    for name, after in values.items():
        before = getattr(product, name)
        if field_text(name, before) != field_text(name, after):
            changes[name] = {"before": field_text(name, before), "after": field_text(name, after)}
    return changes


@transaction.atomic
def product_update(*, product_id: int, values: dict[str, Any], actor: Actor) -> ProductSaved:
    """Change a product; price fields beyond the limits wait for a second approver.

    Fields outside PRICE_FIELDS are saved at once; price fields are saved at once
    (audited) within the limits, else all of this edit's price fields become one
    PENDING PriceChange and the product keeps its prices.
    """
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is None:
        raise NotFound(f"no product {product_id}")
    unknown = set(values) - {f.name for f in Product._meta.concrete_fields}
    if unknown:
        raise ValidationFailed(f"unknown product fields: {', '.join(sorted(unknown))}")
    changes = _diff(product, values)
    price = {name: step for name, step in changes.items() if name in PRICE_FIELDS}
    current = {name: getattr(product, name) for name in PRICE_FIELDS}
    proposed = current | {name: values[name] for name in price}
    reasons = (
        price_change_reasons(
            baseline=_baseline(product=product, current=current), proposed=proposed
        )
        if price
        else []
    )
    # Validate the whole edit as if applied, so a pending change is a valid one.
    for name in changes:
        setattr(product, name, values[name])
    _check(product)
    if reasons:
        for name in price:
            setattr(product, name, current[name])
    product.save()
    recorded = (
        _record(product=product, changes=price, reasons=reasons, actor=actor) if price else None
    )
    return ProductSaved(product=product, price_change=recorded)


@transaction.atomic
def product_create(*, values: dict[str, Any], actor: Actor) -> ProductSaved:
    """Add a product; discounts and fees beyond the limits (from zero) wait for approval."""
    product = Product(**values)
    _check(product)
    defaults = Product()
    checked = {name: getattr(defaults, name) for name in NEW_PRODUCT_CHECKED}
    proposed = {name: getattr(product, name) for name in PRICE_FIELDS}
    reasons = price_change_reasons(baseline=proposed | checked, proposed=proposed, new_product=True)
    price = _diff(defaults, {name: proposed[name] for name in NEW_PRODUCT_CHECKED})
    if reasons:
        for name, value in checked.items():
            setattr(product, name, value)
    product.save()
    if not price:
        return ProductSaved(product=product, price_change=None)
    return ProductSaved(
        product=product,
        price_change=_record(product=product, changes=price, reasons=reasons, actor=actor),
    )


def _pending(price_change_id: int) -> PriceChange:
    change = PriceChange.objects.select_for_update().filter(pk=price_change_id).first()
    if change is None:
        raise NotFound(f"no price change {price_change_id}")
    if change.status != PriceChange.Status.PENDING:
        raise PriceChangeNotPending(
            f"price change {change.pk} is {change.get_status_display().lower()}, not pending"
        )
    return change


def _approver(actor: Actor) -> None:
    if actor.user is None:
        raise ValidationFailed("A price change is decided by a signed-in user.", field="actor")
    if not actor.user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied("You may not approve or reject price changes.")


@transaction.atomic
def price_change_approve(*, price_change_id: int, actor: Actor, note: str = "") -> PriceChange:
    """Apply a pending price change: by a different user holding approve_price_change,
    and only while the product still has the values the request started from."""
    _approver(actor)
    change = _pending(price_change_id)
    if change.requested_by_id is not None and change.requested_by_id == actor.user_id:
        raise PriceChangeOwnRequest(
            f"You requested price change {change.pk}; a different user must approve it."
        )
    product = Product.objects.select_for_update().get(pk=change.product_id)
    stale = [
        name
        for name, step in change.changes.items()
        if field_text(name, getattr(product, name)) != step["before"]
    ]
    if stale:
        raise PriceChangeStale(
            f"{', '.join(stale)} changed since price change {change.pk} was requested; "
            "reject it and request the change again."
        )
    for name, step in change.changes.items():
        setattr(product, name, _value(name, step["after"]))
    _check(product)
    product.save()
    return _decide(change, status=PriceChange.Status.APPROVED, actor=actor, note=note)


@transaction.atomic
def price_change_reject(*, price_change_id: int, actor: Actor, note: str = "") -> PriceChange:
    """Drop a pending price change; the product keeps its prices."""
    _approver(actor)
    change = _pending(price_change_id)
    return _decide(change, status=PriceChange.Status.REJECTED, actor=actor, note=note)


def _decide(change: PriceChange, *, status: str, actor: Actor, note: str) -> PriceChange:
    """Record the decision on a pending change (applied now when approved), audited."""
    change.status = status
    change.decided_by = actor.user
    change.decided_at = timezone.now()
    fields = ["status", "decided_by", "decided_at", "decision_note"]
    if status == PriceChange.Status.APPROVED:
        change.applied_at = change.decided_at
        fields.append("applied_at")
    change.decision_note = note.strip()[:500]
    change.save(update_fields=fields)
    verb = "approve" if status == PriceChange.Status.APPROVED else "reject"
    audit_record(
        action=f"product.price_change_{verb}",
        actor=actor,
        reason=change.decision_note,
        data={
            "product_id": change.product_id,
            "price_change_id": change.pk,
            "requested_by": change.requested_label,
            "changes": change.changes,
        },
    )
    return change
