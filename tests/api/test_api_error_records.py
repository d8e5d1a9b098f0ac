"""The record of a client's API errors (the clients workspace shows the last 50):
what is kept of an error answer, what is never kept, and what keeps it cheap."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from orders.models import ApiErrorRecord
from orders.selectors.clients import api_error_list
from orders.services.api_errors import API_ERROR_RETENTION, api_errors_prune
from orders.services.clients import credential_access_set
from orders.services.recovery import maintenance_sweep

pytestmark = pytest.mark.django_db


def test_an_error_answer_to_a_credential_is_recorded_without_its_query_string(shop):
    response = shop.get("/api/v1/orders/424242", {"note": "kept-nowhere"})

    [record] = ApiErrorRecord.objects.all()
    assert response.status_code == 404
    assert (record.client_id, record.credential_id) == (shop.client.pk, shop.credential.pk)
    assert (record.status, record.error_code, record.method) == (404, "not_found", "GET")
    assert record.path == "/api/v1/orders/424242"
    assert record.request_id == response["X-Request-ID"]


def test_validation_errors_and_refusals_are_recorded_with_their_codes(shop, system_actor):
    shop.post("/api/v1/orders", {"product_id": "not a number"})
    credential_access_set(
        credential_id=shop.credential.pk, actor=system_actor, scopes=["wallet:read"]
    )
    shop.get("/api/v1/orders")

    codes = [(r.status, r.error_code) for r in api_error_list(client_id=shop.client.pk)]

    assert codes == [(403, "insufficient_scope"), (400, "validation_error")]


def test_answers_to_nobody_identified_and_successes_are_not_recorded(shop):
    wrong = shop.get("/api/v1/wallet", headers={"X-API-Secret": "not-the-secret"})
    anonymous = shop.http.get("/api/v1/wallet")
    fine = shop.get("/api/v1/wallet")

    assert (wrong.status_code, anonymous.status_code, fine.status_code) == (401, 401, 200)
    assert not ApiErrorRecord.objects.exists()


def test_repeated_429s_are_kept_once_a_minute_per_credential(shop, rival, settings):
    settings.API_RATE_LIMIT_PER_10_SECONDS = 1
    settings.API_RATE_LIMIT_PER_MINUTE = 1

    answers = [shop.get("/api/v1/wallet").status_code for _ in range(6)]
    rival_answers = [rival.get("/api/v1/wallet").status_code for _ in range(3)]

    assert answers.count(429) >= 4 and rival_answers.count(429) >= 1
    per_credential = {
        key: ApiErrorRecord.objects.filter(credential__public_key=key).count()
        for key in (shop.credential.public_key, rival.credential.public_key)
    }
    # Once a minute: twice at most if the minute turned between the calls.
    assert all(1 <= count <= 2 for count in per_credential.values()), per_credential


def test_an_error_that_cannot_be_recorded_still_answers(shop):
    with mock.patch.object(ApiErrorRecord.objects, "create", side_effect=OperationalError("gone")):
        response = shop.get("/api/v1/orders/77")

    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not ApiErrorRecord.objects.exists()


def test_records_older_than_the_retention_are_pruned_by_the_sweep(shop):
    for _ in range(3):
        shop.get("/api/v1/orders/1")
    old, *recent = ApiErrorRecord.objects.order_by("id")
    ApiErrorRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - API_ERROR_RETENTION - timedelta(minutes=1)
    )

    counts = maintenance_sweep()

    assert counts["api_errors_pruned"] == 1
    assert sorted(ApiErrorRecord.objects.values_list("pk", flat=True)) == [r.pk for r in recent]
    assert api_errors_prune() == 0


def test_the_workspace_reads_the_newest_fifty(shop):
    for order_id in range(1, 56):
        shop.get(f"/api/v1/orders/{order_id}")

    shown = api_error_list(client_id=shop.client.pk)

    assert len(shown) == 50
    assert shown[0].path == "/api/v1/orders/55" and shown[-1].path == "/api/v1/orders/6"
    assert shown[0].credential.public_key == shop.credential.public_key
