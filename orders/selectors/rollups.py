"""When the dashboard's rollups were last refreshed (orders/models/rollups.py)."""

from __future__ import annotations

from orders.models import RollupState

STATE = "rollups"


def rollup_state() -> RollupState | None:
    """The rollups' state row; None until `rollups_refresh` first ran."""
    return RollupState.objects.filter(name=STATE).first()
