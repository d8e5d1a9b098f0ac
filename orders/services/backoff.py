"""Exponential backoff shared by every retried step (fulfilment, webhooks, e-mails)."""

from __future__ import annotations

MAX_BACKOFF_SECONDS = 3600


def backoff_seconds(*, base: int, attempts: int) -> int:
    """Delay after the n-th failure: base × 2^(n-1), at most an hour."""
    return int(min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))
