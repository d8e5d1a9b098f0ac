"""The stock and import rules the inventory services read from orders/rules.py."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from orders.rules import file_importable, is_expired


def test_a_voucher_is_expired_from_its_expiry_moment_on():
    now = timezone.now()
    assert is_expired(now, now=now)
    assert is_expired(now - timedelta(seconds=1), now=now)
    assert not is_expired(now + timedelta(seconds=1), now=now)


def test_a_voucher_without_expiry_never_expires():
    assert not is_expired(None)


def test_is_expired_defaults_to_the_current_time():
    assert is_expired(timezone.now() - timedelta(minutes=1))
    assert not is_expired(timezone.now() + timedelta(minutes=1))


def test_only_a_readable_file_with_rows_and_no_row_error_is_importable():
    assert file_importable(file_error="", error_count=0, row_count=3)
    assert not file_importable(file_error="", error_count=0, row_count=0)
    assert not file_importable(file_error="", error_count=1, row_count=3)
    assert not file_importable(file_error="The file is not UTF-8 text.", error_count=0, row_count=3)
