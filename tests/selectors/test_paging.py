"""Cursors: opaque positions that a hand-made token cannot push out of range."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orders.errors import ValidationFailed
from orders.selectors.paging import CURSOR_RE, MAX_ROW_ID, Cursor


def test_a_cursor_survives_its_round_trip():
    cursor = Cursor(at=datetime(2030, 5, 17, 8, 30, 1, 250, tzinfo=UTC), id=42, direction="prev")
    token = cursor.encode()
    assert CURSOR_RE.fullmatch(token)
    assert Cursor.decode(token) == cursor


def test_a_hand_made_cursor_is_clamped_to_what_a_row_can_hold():
    far = Cursor.decode("n9999999999999999999.9999999999999999999")
    assert far.at == datetime.max.replace(tzinfo=UTC)
    assert far.id == MAX_ROW_ID
    assert Cursor.decode("p-9999999999999999999.0").at == datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize("token", ["", "x1.1", "n1", "n1.1.1", "n 1.1"])
def test_a_token_of_another_shape_is_a_validation_error(token):
    with pytest.raises(ValidationFailed):
        Cursor.decode(token)
