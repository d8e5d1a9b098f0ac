"""Encryption at rest for voucher secrets: AES-256-GCM with a versioned keyring.

Stored form: ``enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>``. Each
value has a fresh random 96-bit nonce and the field's identity
(``orders.voucher.card_number``) as associated data, so a ciphertext moved to
another column fails to decrypt.

`EncryptedTextField` never hands out plaintext: values loaded from the
database are `Sealed` objects whose ``str()`` is a mask. Only `unseal()`
decrypts, and only the reveal and delivery services call it. Assigning a
plain ``str`` to the field encrypts it on save (and replaces the attribute
with the sealed value, so no plaintext lingers on the instance).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from orders.errors import DecryptionFailed

logger = logging.getLogger(__name__)

PREFIX = "enc:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
GIFT_LINK_TOKEN_BYTES = 24  # 192 bits: 32 base64url characters, no padding


@dataclass(frozen=True, slots=True)
class Sealed:
    """An encrypted value as stored. Its text form never shows the secret."""

    ciphertext: str
    aad: str

    @property
    def key_id(self) -> str:
        return self.ciphertext[len(PREFIX) :].split(":", 1)[0]

    def __str__(self) -> str:
        return "••••"

    def __repr__(self) -> str:
        return f"<Sealed {self.aad} key={self.key_id}>"


class Keyring:
    """Named AES-256 keys; the first is active (encrypts), all decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]], fingerprint_key: bytes) -> None:
        if not keys:
            raise ImproperlyConfigured("VOUCHER_KEYS holds no key.")
        seen: set[str] = set()
        for kid, key in keys:
            if not kid or ":" in kid or "," in kid:
                raise ImproperlyConfigured(f"VOUCHER_KEYS: bad key id {kid!r}.")
            if kid in seen:
                raise ImproperlyConfigured(f"VOUCHER_KEYS: key id {kid!r} appears twice.")
            if len(key) != KEY_BYTES:
                raise ImproperlyConfigured(f"VOUCHER_KEYS: key {kid!r} is not 32 bytes.")
            seen.add(kid)
        if len(fingerprint_key) < 32:
            raise ImproperlyConfigured("VOUCHER_FINGERPRINT_KEY must be at least 32 bytes.")
        self.active_kid = keys[0][0]
        self._aead = {kid: AESGCM(key) for kid, key in keys}
        self._fingerprint_key = fingerprint_key

    @property
    def key_ids(self) -> list[str]:
        return list(self._aead)

    def seal(self, plaintext: str, *, aad: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + self._aead[self.active_kid].encrypt(nonce, plaintext.encode(), aad.encode())
        token = base64.urlsafe_b64encode(blob).decode().rstrip("=")
        return Sealed(ciphertext=f"{PREFIX}{self.active_kid}:{token}", aad=aad)

    def unseal(self, sealed: Sealed) -> str:
        kid, blob = _split(sealed)
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionFailed(
                f"Stored {sealed.aad} was encrypted with key {kid!r}, which is not in VOUCHER_KEYS."
            )
        try:
            return aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], sealed.aad.encode()
            ).decode()
        except (InvalidTag, UnicodeDecodeError):
            raise DecryptionFailed(
                f"Stored {sealed.aad} failed authentication (tampered or wrong key {kid!r})."
            ) from None

    def fingerprint(self, value: str) -> str:
        """Keyed hash of a normalised code: finds duplicates without decrypting."""
        normalised = "".join(value.split()).replace("-", "").upper()
        return hmac.new(self._fingerprint_key, normalised.encode(), hashlib.sha256).hexdigest()

    def _subkey(self, purpose: str) -> bytes:
        # One key per purpose, derived from the fingerprint key (which never rotates).
        return hmac.new(
            self._fingerprint_key, f"starship:{purpose}".encode(), hashlib.sha256
        ).digest()

    def gift_link_token(self, seed: str) -> str:
        """The token of a gift link: a keyed HMAC of its stored random seed, 192
        bits as 32 URL-safe characters. Without the key the seed yields nothing."""
        digest = hmac.new(self._subkey("gift-link-token"), seed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:GIFT_LINK_TOKEN_BYTES]).decode()

    def gift_link_hash(self, token: str) -> str:
        """What a gift link's token is stored and looked up as: a keyed HMAC (hex)."""
        return hmac.new(self._subkey("gift-link-hash"), token.encode(), hashlib.sha256).hexdigest()

    def gift_link_code_hash(self, link_id: int, code: str) -> str:
        """What a PROTECTED link's one-time code is stored as: a keyed HMAC (hex) of
        the code bound to its link, so a stored hash is no code and fits no other link."""
        message = f"{link_id}:{code}".encode()
        return hmac.new(self._subkey("gift-link-code"), message, hashlib.sha256).hexdigest()


def _split(sealed: Sealed) -> tuple[str, bytes]:
    text = sealed.ciphertext
    if not text.startswith(PREFIX) or text.count(":") != 3:
        raise DecryptionFailed(f"Stored {sealed.aad} is not in the encrypted format.")
    kid, token = text[len(PREFIX) :].split(":", 1)
    try:
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionFailed(f"Stored {sealed.aad} is not valid base64.") from None
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionFailed(f"Stored {sealed.aad} is truncated.")
    return kid, blob


def _decode_key(kid: str, raw: str, *, setting: str = "VOUCHER_KEYS") -> bytes:
    try:
        return base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{setting}: key {kid!r} is not base64.") from None


def parse_keys(spec: str, *, setting: str = "VOUCHER_KEYS") -> list[tuple[str, bytes]]:
    """Parse ``kid:base64,kid:base64`` (first = active)."""
    keys = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" not in part:
            raise ImproperlyConfigured(f"{setting} entries must look like 'kid:base64key'.")
        kid, raw = part.split(":", 1)
        keys.append((kid.strip(), _decode_key(kid, raw, setting=setting)))
    return keys


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _dev_keys() -> tuple[str, str]:
    path = Path(settings.VOUCHER_DEV_KEYS_FILE)
    if not path.exists():
        data = {"voucher_keys": f"dev1:{generate_key()}", "fingerprint_key": generate_key()}
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            logger.warning(
                "VOUCHER_KEYS is not set: generated a development keyring in %s. "
                "Set VOUCHER_KEYS and VOUCHER_FINGERPRINT_KEY in production.",
                path,
            )
    data = json.loads(path.read_text())
    return data["voucher_keys"], data["fingerprint_key"]


@functools.cache
def keyring() -> Keyring:
    spec, fp_raw = settings.VOUCHER_KEYS, settings.VOUCHER_FINGERPRINT_KEY
    if not spec:
        spec, dev_fp = _dev_keys()
        fp_raw = fp_raw or dev_fp
    if not fp_raw:
        raise ImproperlyConfigured("VOUCHER_FINGERPRINT_KEY must be set with VOUCHER_KEYS.")
    return Keyring(parse_keys(spec), _decode_key("fingerprint", fp_raw))


def reset_keyring() -> None:
    """Forget the cached keyring (after settings change, e.g. in tests)."""
    keyring.cache_clear()
    audit_keyring.cache_clear()


class AuditKeyring:
    """Named HMAC keys of the audit chain; the first seals, all verify."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ImproperlyConfigured("AUDIT_KEY holds no key.")
        seen: set[str] = set()
        for kid, key in keys:
            if not kid or len(kid) > 16 or ":" in kid or "," in kid:
                raise ImproperlyConfigured(f"AUDIT_KEY: bad key id {kid!r} (1-16 characters).")
            if kid in seen:
                raise ImproperlyConfigured(f"AUDIT_KEY: key id {kid!r} appears twice.")
            if len(key) < KEY_BYTES:
                raise ImproperlyConfigured(f"AUDIT_KEY: key {kid!r} is shorter than 32 bytes.")
            seen.add(kid)
        self.active_kid = keys[0][0]
        self._keys = dict(keys)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def mac(self, message: bytes, *, kid: str) -> str | None:
        """HMAC-SHA256 of `message` under key `kid` (hex), or None for an unknown key."""
        key = self._keys.get(kid)
        if key is None:
            return None
        return hmac.new(key, message, hashlib.sha256).hexdigest()


def _dev_audit_key() -> str:
    path = Path(settings.AUDIT_DEV_KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # generated earlier, or by another process first
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"dev1:{generate_key()}\n")
        logger.warning(
            "AUDIT_KEY is not set: generated a development audit key in %s. "
            "Set AUDIT_KEY in production.",
            path,
        )
    return path.read_text().strip()


@functools.cache
def audit_keyring() -> AuditKeyring:
    """The audit chain's keys, from AUDIT_KEY (or the development key file)."""
    spec = settings.AUDIT_KEY or _dev_audit_key()
    return AuditKeyring(parse_keys(spec, setting="AUDIT_KEY"))


def unseal(value: Sealed) -> str:
    """Decrypt a stored value. Callers: the reveal and delivery services only."""
    return keyring().unseal(value)


def fingerprint(value: str) -> str:
    return keyring().fingerprint(value)


def gift_link_token(seed: str) -> str:
    return keyring().gift_link_token(seed)


def gift_link_hash(token: str) -> str:
    return keyring().gift_link_hash(token)


def gift_link_code_hash(link_id: int, code: str) -> str:
    return keyring().gift_link_code_hash(link_id, code)


if TYPE_CHECKING:
    _TextFieldBase = models.TextField[str | Sealed | None, Sealed | None]
else:
    _TextFieldBase = models.TextField


class EncryptedTextField(_TextFieldBase):
    """A text column that holds only AES-256-GCM ciphertext."""

    description = "Encrypted text (AES-256-GCM)"

    def contribute_to_class(self, cls: Any, name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        self.aad = f"{cls._meta.label_lower}.{name}"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Sealed | None:
        if value is None:
            return None
        return Sealed(ciphertext=value, aad=self.aad)

    def to_python(self, value: Any) -> Any:
        # Deserialisation (loaddata) hands back the stored ciphertext.
        if isinstance(value, str) and value.startswith(PREFIX):
            return Sealed(ciphertext=value, aad=self.aad)
        return value

    def pre_save(self, model_instance: models.Model, add: bool) -> Sealed | None:
        value = getattr(model_instance, self.attname)
        if isinstance(value, str):
            value = "" if value == "" else keyring().seal(value, aad=self.aad)
            setattr(model_instance, self.attname, value or None)
        return value or None

    def get_prep_value(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, Sealed):
            return value.ciphertext
        if isinstance(value, str):
            return keyring().seal(value, aad=self.aad).ciphertext
        raise TypeError(f"{self.aad} takes a str or a Sealed value, not {type(value).__name__}.")

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisation (dumpdata) keeps the ciphertext, never plaintext.
        value = self.value_from_object(obj)
        return value.ciphertext if isinstance(value, Sealed) else ""
