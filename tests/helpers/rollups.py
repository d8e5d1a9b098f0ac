"""The dashboard's rollups in tests: pages read them once they are built."""

from __future__ import annotations

from typing import Any

from orders.models import RollupState
from orders.services.rollups import ROLLUP_MODELS, rollups_refresh


def refreshed() -> int:
    """Bring every rollup up to date with the raw rows, as the worker's sweep does."""
    return rollups_refresh()


def forgotten() -> None:
    """Back to no rollup at all: pages read the raw rows again."""
    for model in ROLLUP_MODELS:
        model.objects.all().delete()  # type: ignore[attr-defined]
    RollupState.objects.all().delete()


def rollup_tables() -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row (without ids), per table, sorted: to compare two builds."""
    tables = {}
    for model in ROLLUP_MODELS:
        names = [f.attname for f in model._meta.concrete_fields if not f.primary_key]
        rows = model.objects.values_list(*names)  # type: ignore[attr-defined]
        tables[model._meta.db_table] = sorted(rows, key=str)
    return tables
