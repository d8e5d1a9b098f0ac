"""Dashboard forms: they parse query strings and POST bodies into typed values."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone

from orders.dashboard.widgets import QuickSelect
from orders.enums import DeliveryTime, OrderStatus, SubStatus
from orders.errors import InvalidAmount
from orders.models import Client, Product
from orders.rules import delivery_sub_statuses
from orders.selectors.audit import AuditFilters
from orders.selectors.orders import OrderFilters
from orders.services.wallets import money

SORT_CHOICES = [("newest", "Newest first"), ("oldest", "Oldest first")]


def start_of_day(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone: a date filter's bound."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _money_in_range(value: Decimal) -> None:
    try:
        money(value, field="The amount")
    except InvalidAmount as error:
        raise forms.ValidationError(error.message, code="money_range") from None


def dates_in_order(form: forms.Form, start: str, end: str) -> None:
    """A "to" date before its "from" date is an error on the "to" field, named by
    the fields' own labels."""
    first, last = form.cleaned_data.get(start), form.cleaned_data.get(end)
    if first and last and first > last:
        labels = form.fields[end].label, form.fields[start].label
        form.add_error(end, "“{}” must be on or after “{}”.".format(*labels))


class MoneyField(forms.DecimalField):
    """Every money input of the dashboard: a finite amount with at most 2 decimals
    within the range of the amount columns, checked by the wallet service's money(),
    so "1e400" or "999999999999999" is a form error, never a database overflow."""

    default_validators = [_money_in_range]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal"}))
        super().__init__(max_digits=None, decimal_places=None, **kwargs)


class OrderFilterForm(forms.Form):
    """The order list's filters; every value lives in the URL so a view is shareable."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text="Order id, reference code, transaction id, customer e-mail or phone.",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "id, reference, transaction, e-mail, phone"}
        ),
    )
    status = forms.MultipleChoiceField(
        label="Status",
        required=False,
        choices=OrderStatus.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    sub_status = forms.ChoiceField(
        label="Sub-status",
        required=False,
        choices=[("", "Any"), *SubStatus.choices],
        widget=QuickSelect,
    )
    delivery_time = forms.ChoiceField(
        label="Delivery time",
        required=False,
        choices=[
            ("", "Any"),
            (DeliveryTime.INSTANT, "Instant (from inventory)"),
            (DeliveryTime.DELAYED, "Delayed (through the vendor)"),
        ],
        help_text="Instant: fulfilled from our inventory. Delayed: bought from the vendor.",
        widget=QuickSelect,
    )
    product = forms.ModelChoiceField(
        label="Product",
        required=False,
        queryset=Product.objects.order_by("name"),
        empty_label="Any",
        widget=QuickSelect(label_field="name"),
    )
    client = forms.ModelChoiceField(
        label="Client",
        required=False,
        queryset=Client.objects.order_by("name"),
        empty_label="Any",
        widget=QuickSelect(label_field="name"),
    )
    placed_from = forms.DateField(
        label="Placed from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    placed_to = forms.DateField(
        label="Placed to",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Inclusive.",
    )
    sort = forms.ChoiceField(label="Sort", required=False, choices=SORT_CHOICES, widget=QuickSelect)
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        dates_in_order(self, "placed_from", "placed_to")
        sub, speed = data.get("sub_status"), data.get("delivery_time")
        if sub and speed and SubStatus(sub) not in delivery_sub_statuses(speed):
            self.add_error(
                "sub_status",
                f"Sub-status {sub} never has delivery time {speed}; clear one of the two.",
            )
        return data

    def to_filters(self) -> OrderFilters:
        data = self.cleaned_data
        subs: tuple[SubStatus, ...] = ()
        if data.get("sub_status"):
            subs = (SubStatus(data["sub_status"]),)
        elif data.get("delivery_time"):
            subs = delivery_sub_statuses(data["delivery_time"])
        start, end = data.get("placed_from"), data.get("placed_to")
        return OrderFilters(
            client_id=data["client"].pk if data.get("client") else None,
            statuses=tuple(OrderStatus(s) for s in data.get("status") or ()),
            sub_statuses=subs,
            product_id=data["product"].pk if data.get("product") else None,
            placed_after=start_of_day(start) if start else None,
            placed_before=start_of_day(end + timedelta(days=1)) if end else None,
            search=(data.get("q") or "").strip(),
        )

    @property
    def newest_first(self) -> bool:
        return self.cleaned_data.get("sort") != "oldest"


REVEAL_REASONS = [
    ("not_received", "Customer says code not received"),
    ("invalid", "Customer says code invalid"),
    ("fraud", "Fraud / risk review"),
    ("other", "Other"),
]


class RevealForm(forms.Form):
    reason = forms.ChoiceField(label="Reason", choices=REVEAL_REASONS)
    note = forms.CharField(label="Note (optional)", required=False, max_length=300)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("reason") == "other" and not (data.get("note") or "").strip():
            self.add_error("note", "Say why when the reason is “Other”.")
        return data

    @property
    def audit_reason(self) -> str:
        label = dict(REVEAL_REASONS)[self.cleaned_data["reason"]]
        note = (self.cleaned_data.get("note") or "").strip()
        return f"{label}: {note}" if note else label


class ActionForm(forms.Form):
    """The confirmation step of an order action: a reason is required."""

    reason = forms.CharField(label="Reason", max_length=400, strip=True)


class AuditFilterForm(forms.Form):
    user = forms.ModelChoiceField(
        label="User",
        required=False,
        queryset=get_user_model().objects.filter(is_staff=True).order_by("username"),
        empty_label="Anyone",
        widget=QuickSelect(label_field="username"),
    )
    action = forms.ChoiceField(label="Action", required=False, widget=QuickSelect)
    order = forms.IntegerField(label="Order id", required=False, min_value=1)
    created_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    cursor = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Any"), *((a, a) for a in actions)]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "“To” must be on or after “From”.")
        return data

    def to_filters(self) -> AuditFilters:
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        return AuditFilters(
            user_id=data["user"].pk if data.get("user") else None,
            action=data.get("action") or "",
            order_id=data.get("order"),
            created_after=start_of_day(start) if start else None,
            created_before=start_of_day(end + timedelta(days=1)) if end else None,
        )
