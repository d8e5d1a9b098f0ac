"""Rotating a credential's secret: the new one works at once, the old one until
the overlap ends (then only the new one), two secrets at most ever work, and
each credential shows when and from where it was last used."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from orders.errors import Conflict
from orders.models import ApiCredential, AuditEvent
from orders.services.clients import credential_revoke, credential_rotate

pytestmark = pytest.mark.django_db


def rotated(shop, system_actor, **options):
    """The shop with its new secret (the old `shop` keeps the old one)."""
    issued = credential_rotate(credential_id=shop.credential.pk, actor=system_actor, **options)
    return dataclasses.replace(shop, secret=issued.secret)


def overlap_ends(shop) -> None:
    """The overlap runs out (and the API's few seconds of credential cache with it)."""
    ApiCredential.objects.filter(pk=shop.credential.pk).update(
        previous_secret_valid_until=timezone.now() - timedelta(seconds=1)
    )
    cache.clear()


def token_status(shop) -> int:
    response = shop.http.post(
        "/api/v1/auth/token",
        {"api_key": shop.credential.public_key, "api_secret": shop.secret},
        content_type="application/json",
    )
    return response.status_code


def test_inside_the_overlap_old_and_new_secrets_both_work_then_only_the_new(shop, system_actor):
    assert shop.get("/api/v1/orders").status_code == 200  # warm: the credential is cached
    new = rotated(shop, system_actor, overlap_seconds=3600)

    assert new.get("/api/v1/orders").status_code == 200
    assert shop.get("/api/v1/orders").status_code == 200
    assert (token_status(new), token_status(shop)) == (200, 200)

    overlap_ends(shop)

    assert new.get("/api/v1/orders").status_code == 200
    assert shop.get("/api/v1/orders").status_code == 401
    assert (token_status(new), token_status(shop)) == (200, 401)


def test_without_an_overlap_the_old_secret_stops_at_once(shop, system_actor):
    new = rotated(shop, system_actor, overlap_seconds=0)

    assert (new.get("/api/v1/orders").status_code, shop.get("/api/v1/orders").status_code) == (
        200,
        401,
    )


def test_rotating_again_inside_the_overlap_ends_the_oldest_secret(shop, system_actor):
    second = rotated(shop, system_actor, overlap_seconds=3600)
    third = rotated(second, system_actor, overlap_seconds=3600)

    statuses = [user.get("/api/v1/orders").status_code for user in (shop, second, third)]

    assert statuses == [401, 200, 200]


def test_a_rotation_is_audited_and_no_secret_is_kept(shop, system_actor):
    new = rotated(shop, system_actor, overlap_seconds=600)

    event = AuditEvent.objects.get(action="credential.rotate")
    assert event.data["public_key"] == shop.credential.public_key
    assert event.data["previous_secret_valid_until"] is not None
    stored = ApiCredential.objects.get(pk=shop.credential.pk)
    assert new.secret not in json.dumps(event.data) and shop.secret not in json.dumps(event.data)
    assert new.secret not in {stored.secret_hash, stored.previous_secret_hash}
    assert stored.secret_hash == ApiCredential.hash_secret(new.secret)


def test_a_revoked_credential_cannot_be_rotated(shop, system_actor):
    credential_revoke(credential_id=shop.credential.pk, actor=system_actor)

    with pytest.raises(Conflict):
        credential_rotate(credential_id=shop.credential.pk, actor=system_actor)
    assert shop.get("/api/v1/orders").status_code == 401


def test_the_last_use_records_the_address_it_came_from(shop):
    response = shop.get("/api/v1/orders", REMOTE_ADDR="203.0.113.45")

    assert response.status_code == 200
    credential = ApiCredential.objects.get(pk=shop.credential.pk)
    assert credential.last_used_at is not None
    assert credential.last_used_ip == "203.0.113.45"


def test_rotate_credential_prints_the_new_secret_once_and_keeps_the_key(shop, capsys):
    call_command(
        "rotate_credential", shop.credential.public_key, "--overlap-seconds", "60", "--json"
    )

    printed = json.loads(capsys.readouterr().out)
    assert printed["api_key"] == shop.credential.public_key
    assert printed["previous_secret_valid_until"] is not None
    new = dataclasses.replace(shop, secret=printed["api_secret"])
    assert new.get("/api/v1/orders").status_code == 200
    assert shop.get("/api/v1/orders").status_code == 200  # inside its 60 s


def test_rotate_credential_names_an_unknown_key(db):
    with pytest.raises(CommandError, match="No credential has the key"):
        call_command("rotate_credential", "sk_live_nosuchkey")
