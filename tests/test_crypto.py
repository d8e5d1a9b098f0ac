"""Encryption at rest: what the database really holds, tampering, AAD, key rotation."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from orders.crypto import PREFIX, Sealed, keyring, reset_keyring, unseal
from orders.errors import DecryptionFailed
from orders.models import Client, Voucher, WebhookEndpoint
from tests.factories import VoucherFactory
from tests.helpers.keys import TEST_KEY_1, TEST_KEY_2

pytestmark = pytest.mark.django_db

SECRETS = {
    "card_number": "6011000990139424",
    "pin_code": "8271",
    "voucher_reference_number": "REF-77410023",
    "claim_url": "https://redeem.example.com/claim/Zq81xPfa",
}
COLUMNS = tuple(SECRETS)


def _raw(voucher_id: int) -> dict[str, str | None]:
    """The voucher's secret columns exactly as stored, bypassing the ORM field."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS)} FROM orders_voucher WHERE id = %s",  # noqa: S608
            [voucher_id],
        )
        row = cursor.fetchone()
    return dict(zip(COLUMNS, row, strict=True))


def _write_raw(voucher_id: int, column: str, value: str) -> None:
    assert column in COLUMNS
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE orders_voucher SET {column} = %s WHERE id = %s",  # noqa: S608
            [value, voucher_id],
        )


def _use_keys(settings, spec: str) -> None:
    settings.VOUCHER_KEYS = spec
    reset_keyring()


@pytest.fixture
def voucher() -> Voucher:
    return VoucherFactory(**SECRETS, card_last4="9424")


def test_database_rows_hold_no_plaintext(voucher):
    raw = _raw(voucher.pk)

    for column, plaintext in SECRETS.items():
        assert raw[column] is not None and raw[column].startswith(PREFIX + "k1:")
        assert plaintext not in raw[column]
    # The model instance never keeps the plaintext either.
    assert isinstance(voucher.card_number, Sealed)
    assert str(voucher.card_number) == "••••"
    assert SECRETS["card_number"] not in repr(voucher.card_number)


def test_each_value_decrypts_to_what_was_stored(voucher):
    stored = Voucher.objects.get(pk=voucher.pk)

    assert {column: unseal(getattr(stored, column)) for column in COLUMNS} == SECRETS


def test_same_code_twice_gives_different_ciphertexts():
    first = VoucherFactory(card_number="5555444433332222")
    second = VoucherFactory(card_number="5555444433332222")

    assert _raw(first.pk)["card_number"] != _raw(second.pk)["card_number"]


def test_tampered_ciphertext_is_refused_without_revealing_the_code(voucher):
    stored = _raw(voucher.pk)["card_number"]
    assert stored is not None
    middle = len(stored) - 20  # inside the base64 body, away from the padding bits
    flipped = "B" if stored[middle] != "B" else "C"
    _write_raw(voucher.pk, "card_number", stored[:middle] + flipped + stored[middle + 1 :])

    tampered = Voucher.objects.get(pk=voucher.pk)
    with pytest.raises(DecryptionFailed) as excinfo:
        unseal(tampered.card_number)

    assert "orders.voucher.card_number" in excinfo.value.message
    assert SECRETS["card_number"] not in str(excinfo.value)
    # The other columns of the row are untouched and still decrypt.
    assert unseal(tampered.pin_code) == SECRETS["pin_code"]


def test_ciphertext_moved_to_another_column_fails(voucher):
    _write_raw(voucher.pk, "pin_code", _raw(voucher.pk)["card_number"] or "")

    moved = Voucher.objects.get(pk=voucher.pk)
    with pytest.raises(DecryptionFailed) as excinfo:
        unseal(moved.pin_code)

    assert "orders.voucher.pin_code" in excinfo.value.message
    assert SECRETS["card_number"] not in str(excinfo.value)


def test_truncated_or_foreign_value_fails_clearly(voucher):
    _write_raw(voucher.pk, "claim_url", "https://plain.example/not-encrypted")
    _write_raw(voucher.pk, "pin_code", "enc:v1:k1:AAAA")

    stored = Voucher.objects.get(pk=voucher.pk)
    with pytest.raises(DecryptionFailed, match="not in the encrypted format"):
        unseal(stored.claim_url)
    with pytest.raises(DecryptionFailed, match="truncated"):
        unseal(stored.pin_code)


def test_before_rotation_removing_the_old_key_makes_decryption_fail_clearly(settings, voucher):
    _use_keys(settings, f"k2:{TEST_KEY_2}")

    stored = Voucher.objects.get(pk=voucher.pk)
    with pytest.raises(DecryptionFailed) as excinfo:
        unseal(stored.card_number)

    assert "'k1'" in excinfo.value.message and "VOUCHER_KEYS" in excinfo.value.message
    assert SECRETS["card_number"] not in str(excinfo.value)


def test_rotation_re_encrypts_everything_to_the_active_key(settings, voucher):
    endpoint = WebhookEndpoint.objects.create(
        client=Client.objects.create(name="Hooked"),
        url="https://hooks.example.com/starship",
        secret="whsec_s3cr3t-signing-key",
        events=["order.delivered"],
    )
    others = VoucherFactory.create_batch(4)
    _use_keys(settings, f"k2:{TEST_KEY_2},k1:{TEST_KEY_1}")
    out = StringIO()

    call_command("rotate_voucher_keys", "--batch-size", "2", stdout=out)

    for row in [voucher, *others]:
        for column, value in _raw(row.pk).items():
            assert value is None or value.startswith(PREFIX + "k2:"), (row.pk, column)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM orders_webhookendpoint WHERE id = %s", [endpoint.pk])
        (raw_secret,) = cursor.fetchone()
    assert raw_secret.startswith(PREFIX + "k2:")
    assert "orders.voucher.card_number: 5 re-encrypted" in out.getvalue()
    assert "orders.webhookendpoint.secret: 1 re-encrypted" in out.getvalue()
    for plaintext in [*SECRETS.values(), "whsec_s3cr3t-signing-key"]:
        assert plaintext not in out.getvalue()

    # With the old key gone, everything still decrypts.
    _use_keys(settings, f"k2:{TEST_KEY_2}")
    stored = Voucher.objects.get(pk=voucher.pk)
    assert {column: unseal(getattr(stored, column)) for column in COLUMNS} == SECRETS
    assert unseal(WebhookEndpoint.objects.get(pk=endpoint.pk).secret) == (
        "whsec_s3cr3t-signing-key"
    )


def test_rotation_leaves_values_already_under_the_active_key_untouched(settings, voucher):
    _use_keys(settings, f"k2:{TEST_KEY_2},k1:{TEST_KEY_1}")
    fresh = VoucherFactory()
    before = _raw(fresh.pk)

    call_command("rotate_voucher_keys", stdout=StringIO())
    call_command("rotate_voucher_keys", stdout=(second := StringIO()))

    assert _raw(fresh.pk) == before
    assert "Total: 0 value(s) re-encrypted" in second.getvalue()


def test_dry_run_counts_without_changing_anything(settings, voucher):
    before = _raw(voucher.pk)
    _use_keys(settings, f"k2:{TEST_KEY_2},k1:{TEST_KEY_1}")
    out = StringIO()

    call_command("rotate_voucher_keys", "--dry-run", stdout=out)

    assert _raw(voucher.pk) == before
    assert "orders.voucher.pin_code: 1 would be re-encrypted" in out.getvalue()
    assert "Total: 4 value(s) would be re-encrypted to key k2." in out.getvalue()


def test_rotation_without_the_old_key_stops_with_a_clear_error(settings, voucher):
    _use_keys(settings, f"k2:{TEST_KEY_2}")

    with pytest.raises(CommandError, match="not in VOUCHER_KEYS") as excinfo:
        call_command("rotate_voucher_keys", stdout=StringIO())

    assert SECRETS["card_number"] not in str(excinfo.value)
    assert str(_raw(voucher.pk)["card_number"]).startswith(PREFIX + "k1:")


def test_fingerprint_finds_duplicates_whatever_the_formatting():
    assert keyring().fingerprint("4111 1111-1111 1111") == keyring().fingerprint("4111111111111111")
    assert keyring().fingerprint("4111111111111111") != keyring().fingerprint("4111111111111112")
