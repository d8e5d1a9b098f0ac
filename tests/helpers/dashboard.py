"""The dashboard as staff use it: a browser-like test client, and the secrets of the
delivered voucher the dashboard fixtures make (tests assert they stay hidden)."""

from __future__ import annotations

from typing import Any

from django.test import Client

CARD_NUMBER = "6011000099990042"
PIN = "8246"
REFERENCE = "REF-77-SECRET"


def client_for(user: Any) -> Client:
    """A test client with a browser's user agent and address, signed in as `user` (or not)."""
    client = Client(HTTP_USER_AGENT="pytest-browser/1.0", REMOTE_ADDR="10.1.2.3")
    if user is not None:
        client.force_login(user)
    return client
