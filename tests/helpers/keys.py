"""The fixed test keys: the keyring, the fingerprint key and the audit key."""

from __future__ import annotations

import base64

TEST_KEY_1 = base64.urlsafe_b64encode(b"1" * 32).decode()
TEST_KEY_2 = base64.urlsafe_b64encode(b"2" * 32).decode()
TEST_FINGERPRINT_KEY = base64.urlsafe_b64encode(b"f" * 32).decode()
TEST_AUDIT_KEY = f"t1:{base64.urlsafe_b64encode(b'a' * 32).decode()}"
