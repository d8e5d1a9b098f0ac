"""The audited admin base classes and the masking every admin page shares.

Every add, change, delete and action through an admin built on AuditedAdmin
writes an AuditEvent (admin.*) with the fields' before/after, never a secret.
Deletes are for superusers only, and only where nothing points at the row.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import ActionLocation
from django.db import transaction
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from orders.models import Voucher
from orders.services.actors import Actor
from orders.services.audit import audit_record

MASK = "••••"
VOUCHER_SECRETS = ("card_number", "pin_code", "voucher_reference_number", "claim_url")
# Keys whose values are masked wherever a JSON payload is shown.
SECRET_KEYS = {*VOUCHER_SECRETS, "secret", "api_secret", "password", "token"}
# Never written into an audit event's data, even as a hash.
AUDIT_MASKED = {*SECRET_KEYS, "secret_hash", "fingerprint"}


def masked(value: object) -> str:
    return MASK if value else "—"


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_KEYS and v else _mask_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value


def masked_json_text(value: Any) -> str:
    """A JSON payload as the admin shows it: indented, keys sorted, secrets masked."""
    return json.dumps(_mask_json(value), indent=2, sort_keys=True)


def is_changelist(request: HttpRequest) -> bool:
    url_name = getattr(request.resolver_match, "url_name", None) or ""
    return url_name.endswith("_changelist")


def _field_values(obj: Model, names: list[str]) -> dict[str, Any]:
    """The stored values of `names` (related ids for foreign keys, sorted ids for m2m)."""
    model = type(obj)
    concrete = [n for n in names if not model._meta.get_field(n).many_to_many]
    attnames = {name: getattr(model._meta.get_field(name), "attname", name) for name in concrete}
    row = model._default_manager.filter(pk=obj.pk).values(*attnames.values()).first() or {}
    values = {name: row.get(attname) for name, attname in attnames.items()}
    for name in names:
        if name not in values:
            values[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
    return values


def _audit_value(name: str, value: Any) -> Any:
    return MASK if name in AUDIT_MASKED and value not in (None, "") else value


def _audit_actions(action: Any, name: str) -> Any:
    """The action, writing an admin.action event (model, action, ids) when it runs."""
    func: Callable[..., Any] = action.func

    @functools.wraps(func)
    def audited(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:1000])
            result = func(modeladmin, request, queryset)
            audit_record(
                action="admin.action",
                actor=Actor.for_request(request),
                data={
                    "model": modeladmin.model._meta.label_lower,
                    "action": name,
                    "pks": ids,
                    "count": len(ids),
                },
            )
        return result

    return dataclasses.replace(action, func=audited)


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change, delete and action here also writes an AuditEvent.

    The event's data names the model, the row and each changed form field with
    its value before (read from the database) and after; secrets are masked.
    """

    def _audited_fields(self, form: ModelForm) -> list[str]:
        fields = {
            f.name for f in [*self.model._meta.concrete_fields, *self.model._meta.many_to_many]
        }
        return [name for name in form.fields if name in fields]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        names = self._audited_fields(form)
        obj._admin_audit_before = _field_values(obj, names) if change else dict.fromkeys(names)
        self._save(request, obj, form, change)

    def _save(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)

    def _changes(self, obj: Any) -> dict[str, dict[str, Any]]:
        before: dict[str, Any] = getattr(obj, "_admin_audit_before", {})
        after = _field_values(obj, list(before)) if obj.pk is not None else {}
        return {
            name: {"before": _audit_value(name, before[name]), "after": _audit_value(name, value)}
            for name, value in after.items()
            if value != before[name]
        }

    def _audit(self, request: HttpRequest, action: str, obj: Any, **data: Any) -> None:
        audit_record(
            action=action,
            actor=Actor.for_request(request),
            voucher_id=obj.pk if isinstance(obj, Voucher) else None,
            data={
                "model": obj._meta.label_lower,
                "pk": obj.pk,
                "object": str(obj)[:200],
                **data,
            },
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_addition(request, obj, message)
        extra = getattr(obj, "_admin_audit_extra", {})
        self._audit(request, "admin.add", obj, changes=self._changes(obj), **extra)
        return entry

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        entry = super().log_change(request, obj, message)
        extra = getattr(obj, "_admin_audit_extra", {})
        if isinstance(message, list):  # field labels only, as django_admin_log keeps them
            extra = {"message": message, **extra}
        self._audit(request, "admin.change", obj, changes=self._changes(obj), **extra)
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self._audit(request, "admin.delete", obj)
        return entries

    def get_actions(
        self, request: HttpRequest, action_location: Any = ActionLocation.CHANGE_LIST
    ) -> Any:
        actions = super().get_actions(request, action_location=action_location)
        # delete_selected is audited per row by log_deletions once confirmed.
        return {
            name: action if name == "delete_selected" else _audit_actions(action, name)
            for name, action in actions.items()
        }

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = getattr(request, "user", None)
        return bool(getattr(user, "is_superuser", False)) and super().has_delete_permission(
            request, obj
        )


class ReadOnly:
    """Viewable only: these rows are written by services (or are append-only)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, AuditedAdmin):
    """An audited admin whose rows are viewable only."""


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True
