"""The clients workspace as a finance user runs it: onboard a client, issue a
credential and hand over its secret (shown once), narrow and limit it, rotate and
revoke it, register a webhook and replay a delivery, read the client's recent API
errors; every change audited, every bad input refused with nothing changed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from orders.crypto import unseal
from orders.dashboard.permissions import PERMISSIONS
from orders.models import (
    ApiCredential,
    ApiErrorRecord,
    AuditEvent,
    Client,
    Wallet,
    WebhookDelivery,
    WebhookEndpoint,
)
from orders.services.actors import Actor
from orders.services.clients import client_open, credential_issue
from tests.helpers.tasks import run_ready_tasks, wait_until

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
SECRET_RE = re.compile(r'id="one-time-secret-value">([^<]+)<')
CLIENT_VIEWS = sorted(name for name in PERMISSIONS if name.startswith("client_"))


@pytest.fixture
def finance(as_role) -> HttpClient:
    return as_role("finance")


@pytest.fixture
def shop(db) -> Client:
    client, _wallet = client_open(name="Comet Rewards", currency="USD", actor=Actor.system("test"))
    return client


def _url(name: str, *args: int) -> str:
    return reverse(f"dashboard:{name}", args=args)


def _shown_secret(response: Any) -> str:
    """The one-time secret on the page (asserted present without printing it)."""
    found = SECRET_RE.search(response.content.decode())
    assert found is not None, "no one-time secret on the page"
    return found.group(1)


def _api(key: str, secret: str, path: str = "/api/v1/wallet", **extra: Any) -> Any:
    headers = {"X-API-Key": key, "X-API-Secret": secret}
    return HttpClient(**extra).get(path, headers=headers)


def _issue(finance: HttpClient, shop: Client, **data: Any) -> tuple[ApiCredential, str]:
    body = {"mode": "live", "scopes": ["orders:read", "wallet:read"], **data}
    response = finance.post(_url("client_credential_issue", shop.pk), body, headers=HTMX)
    assert response.status_code == 200, response.status_code
    credential = ApiCredential.objects.filter(client=shop).latest("created_at")
    return credential, _shown_secret(response)


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _by_finance(event: AuditEvent) -> bool:
    return event.actor_label == "user:finance-user" and event.actor_user_id is not None


# --- Clients ------------------------------------------------------------------------


def test_finance_creates_a_client_with_a_wallet_from_the_dashboard(finance):
    response = finance.post(
        _url("client_create"),
        {"name": "Nova Perks", "currency": "eur", "contact_email": "ops@nova.example"},
    )

    client = Client.objects.get(name="Nova Perks")
    assert response.status_code == 302
    assert response["Location"] == _url("client_detail", client.pk)
    assert list(Wallet.objects.filter(client=client).values_list("currency", "balance")) == [
        ("EUR", 0)
    ]
    assert not client.credentials.exists()  # issued on its page, one by one
    [event] = [event for event in _events("client.create") if _by_finance(event)]
    assert _by_finance(event) and event.data["client_id"] == client.pk
    page = finance.get(response["Location"])
    assert "Nova Perks" in page.content.decode() and "0.00 EUR" in page.content.decode()


def test_creating_a_client_with_htmx_goes_to_its_page(finance):
    response = finance.post(
        _url("client_create"), {"name": "Htmx Shop", "currency": "USD"}, headers=HTMX
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == _url("client_detail", Client.objects.get(name="Htmx Shop").pk)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Comet Rewards", "currency": "USD"}, "already exists"),
        ({"name": "Bad Money", "currency": "U$D"}, "is not a 3-letter currency code"),
        ({"name": "", "currency": "USD"}, "This field is required"),
    ],
)
def test_a_client_that_cannot_be_created_is_refused_with_nothing_written(
    finance, shop, data, message
):
    response = finance.post(_url("client_create"), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Client.objects.count() == 1 and Wallet.objects.count() == 1
    assert not any(_by_finance(event) for event in _events("client.create"))


def test_the_list_shows_each_client_with_its_wallets_and_finds_by_name(finance, shop):
    client_open(name="Orbit Gifts", currency="GBP", actor=Actor.system("test"))

    everyone = finance.get(_url("client_list")).content.decode()
    found = finance.get(_url("client_list"), {"q": "orbit"}, headers=HTMX)

    assert "Comet Rewards" in everyone and "Orbit Gifts" in everyone and "0.00 GBP" in everyone
    assert found.status_code == 200 and "<html" not in found.content.decode()
    assert "Orbit Gifts" in found.content.decode()
    assert "Comet Rewards" not in found.content.decode()


def test_a_second_wallet_is_opened_once(finance, shop):
    first = finance.post(_url("client_wallet_open", shop.pk), {"currency": "gbp"})
    again = finance.post(_url("client_wallet_open", shop.pk), {"currency": "GBP"}, headers=HTMX)

    assert first.status_code == 302
    assert again.status_code == 400 and "already has a GBP wallet" in again.content.decode()
    assert sorted(shop.wallets.values_list("currency", flat=True)) == ["GBP", "USD"]
    [event] = _events("wallet.open")
    assert _by_finance(event) and event.data["currency"] == "GBP"


# --- Credentials --------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_an_issued_secret_is_shown_once_and_authenticates(finance, shop, htmx):
    response = finance.post(
        _url("client_credential_issue", shop.pk),
        {"label": "production", "mode": "live", "scopes": ["orders:read", "wallet:read"]},
        headers=HTMX if htmx else {},
    )

    assert response.status_code == 200  # shown in this answer, never redirected to
    assert "no-store" in response["Cache-Control"]
    assert ("<html" in response.content.decode()) is not htmx
    secret = _shown_secret(response)
    credential = ApiCredential.objects.get(client=shop)
    assert credential.label == "production" and credential.scopes == ["orders:read", "wallet:read"]
    assert _api(credential.public_key, secret).status_code == 200

    reloaded = finance.get(_url("client_detail", shop.pk)).content.decode()
    kept = [
        secret in reloaded,
        secret in str(dict(finance.session.items())),
        secret in finance.cookies.output(),
        any(secret in str(event.data) for event in AuditEvent.objects.all()),
    ]
    assert kept == [False, False, False, False], "the secret is kept or shown again"
    assert credential.public_key in reloaded
    [event] = _events("credential.issue")
    assert _by_finance(event) and event.data["public_key"] == credential.public_key


def test_a_test_mode_credential_gets_a_test_key(finance, shop):
    credential, _secret = _issue(finance, shop, mode="test")

    assert credential.mode == "test" and credential.public_key.startswith("sk_test_")


def test_changed_scopes_and_allowlist_are_honoured_by_the_api(finance, shop):
    credential, secret = _issue(finance, shop)
    url = _url("client_credential_access", shop.pk, credential.pk)

    narrowed = finance.post(url, {"scopes": ["wallet:read"]}, headers=HTMX)
    reads_orders = _api(credential.public_key, secret, "/api/v1/orders")
    reads_wallet = _api(credential.public_key, secret)
    listed = finance.post(url, {"scopes": ["wallet:read"], "allowed_ips": "203.0.113.0/24"})
    elsewhere = _api(credential.public_key, secret, REMOTE_ADDR="198.51.100.7")
    inside = _api(credential.public_key, secret, REMOTE_ADDR="203.0.113.9")

    assert narrowed.status_code == 200 and "scopes wallet:read" in narrowed.content.decode()
    assert reads_orders.status_code == 403 and reads_orders.json()["error"] == "insufficient_scope"
    assert reads_wallet.status_code == 200
    assert listed.status_code == 302
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "ip_not_allowed"
    assert inside.status_code == 200
    events = _events("credential.access_set")
    assert len(events) == 2 and all(_by_finance(e) for e in events)
    assert events[-1].data["allowed_networks"] == ["203.0.113.0/24"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scopes": ["wallet:read"], "allowed_ips": "10.0.0.300/24"}, "10.0.0.300/24"),
        ({"scopes": ["orders:delete"]}, "Unknown scope orders:delete; valid: orders:write"),
        ({"allowed_ips": ""}, "A credential needs at least one scope"),
    ],
    ids=["bad-cidr", "unknown-scope", "no-scope"],
)
def test_bad_access_is_refused_and_changes_nothing(finance, shop, data, message):
    credential, secret = _issue(finance, shop)
    url = _url("client_credential_access", shop.pk, credential.pk)

    response = finance.post(url, data, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was changed" in html and message in html
    stored = ApiCredential.objects.get(pk=credential.pk)
    assert stored.scopes == ["orders:read", "wallet:read"] and stored.allowed_networks == []
    assert _events("credential.access_set") == []
    assert _api(credential.public_key, secret, "/api/v1/orders").status_code == 200


def test_a_bad_cidr_at_issue_issues_nothing(finance, shop):
    response = finance.post(
        _url("client_credential_issue", shop.pk),
        {"mode": "live", "scopes": ["orders:read"], "allowed_ips": "203.0.113.0/33"},
    )

    assert response.status_code == 400 and "203.0.113.0/33" in response.content.decode()
    assert SECRET_RE.search(response.content.decode()) is None
    assert not ApiCredential.objects.filter(client=shop).exists()
    assert _events("credential.issue") == []


def test_rotating_shows_the_new_secret_once_and_ends_the_old_one(finance, shop):
    credential, old = _issue(finance, shop)

    response = finance.post(
        _url("client_credential_rotate", shop.pk, credential.pk),
        {"overlap_seconds": "0"},
        headers=HTMX,
    )

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = _shown_secret(response)
    assert _api(credential.public_key, new).status_code == 200
    assert _api(credential.public_key, old).status_code == 401
    reloaded = finance.get(_url("client_detail", shop.pk)).content.decode()
    shown_again = new in reloaded
    assert not shown_again, "the rotated secret is shown again"
    [event] = _events("credential.rotate")
    assert _by_finance(event) and event.data["previous_secret_valid_until"] is None


def test_the_old_secret_keeps_working_for_the_overlap(finance, shop):
    credential, old = _issue(finance, shop)

    response = finance.post(
        _url("client_credential_rotate", shop.pk, credential.pk), {"overlap_seconds": "600"}
    )

    assert response.status_code == 200
    assert _api(credential.public_key, old).status_code == 200
    assert _api(credential.public_key, _shown_secret(response)).status_code == 200


def test_a_revoked_credential_answers_401_and_cannot_be_rotated(finance, shop):
    credential, secret = _issue(finance, shop)

    revoked = finance.post(_url("client_credential_revoke", shop.pk, credential.pk))
    rotated = finance.post(_url("client_credential_rotate", shop.pk, credential.pk), {})

    assert revoked.status_code == 302
    assert _api(credential.public_key, secret).status_code == 401
    assert rotated.status_code == 400
    assert "A revoked credential cannot be rotated" in rotated.content.decode()
    assert SECRET_RE.search(rotated.content.decode()) is None
    [event] = _events("credential.revoke")
    assert _by_finance(event)
    assert _events("credential.rotate") == []


def test_another_clients_credential_is_not_found(finance, shop):
    credential, _secret = _issue(finance, shop)
    other, _wallet = client_open(name="Other Shop", currency="USD", actor=Actor.system("test"))

    response = finance.post(_url("client_credential_revoke", other.pk, credential.pk))

    assert response.status_code == 404
    assert ApiCredential.objects.get(pk=credential.pk).revoked_at is None


def test_a_lower_rate_limit_plan_answers_429_sooner(finance, shop, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 200
    settings.API_RATE_LIMIT_PER_10_SECONDS = 20
    limited, limited_secret = _issue(finance, shop)
    default, default_secret = _issue(finance, shop)

    saved = finance.post(
        _url("client_credential_rate_limit", shop.pk, limited.pk),
        {"rate_limit_per_minute": "10"},
        headers=HTMX,
    )
    # Windows are fixed: one boundary crossed between two calls lets one more through.
    limited_answers = [_api(limited.public_key, limited_secret) for _ in range(3)]
    default_answers = [_api(default.public_key, default_secret) for _ in range(3)]

    assert saved.status_code == 200
    assert "10 requests a minute (1 per 10 seconds)" in saved.content.decode()
    assert 429 in [r.status_code for r in limited_answers]  # its burst scales with it: 1 per 10 s
    assert limited_answers[0]["X-RateLimit-Limit"] == "1"
    assert [r.status_code for r in default_answers] == [200, 200, 200]
    assert default_answers[0]["X-RateLimit-Limit"] == "20"
    [event] = _events("credential.rate_limit_set")
    assert _by_finance(event)
    assert event.data["per_minute"] == 10 and event.data["previous_per_minute"] is None


def test_an_empty_plan_goes_back_to_the_default(finance, shop):
    credential, _secret = _issue(finance, shop)
    url = _url("client_credential_rate_limit", shop.pk, credential.pk)
    finance.post(url, {"rate_limit_per_minute": "50"})

    response = finance.post(url, {"rate_limit_per_minute": ""})

    assert response.status_code == 302
    assert ApiCredential.objects.get(pk=credential.pk).rate_limit_per_minute is None
    assert [e.data["per_minute"] for e in _events("credential.rate_limit_set")] == [50, None]


@pytest.mark.parametrize(("plan", "message"), [("0", "1 to 100000"), ("lots", "whole number")])
def test_a_bad_plan_is_refused_and_changes_nothing(finance, shop, plan, message):
    credential, _secret = _issue(finance, shop)

    response = finance.post(
        _url("client_credential_rate_limit", shop.pk, credential.pk),
        {"rate_limit_per_minute": plan},
        headers=HTMX,
    )

    assert response.status_code == 400 and message in response.content.decode()
    assert ApiCredential.objects.get(pk=credential.pk).rate_limit_per_minute is None
    assert _events("credential.rate_limit_set") == []


# --- Webhooks -----------------------------------------------------------------------


def _register(finance: HttpClient, shop: Client, url: str, **extra: Any) -> Any:
    return finance.post(
        _url("client_webhook_create", shop.pk),
        {"url": url, "events": ["order.delivered", "order.failed"]},
        **extra,
    )


def _delivered(delivery_id: int) -> bool:
    return WebhookDelivery.objects.get(pk=delivery_id).status == "DELIVERED"


@pytest.mark.engines
@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_registered_tested_logged_and_replayed(roles, finance, shop, receiver):
    hook = receiver()

    registered = _register(finance, shop, hook.url, headers=HTMX)
    endpoint = WebhookEndpoint.objects.get(client=shop)
    same_secret = _shown_secret(registered) == unseal(endpoint.secret)
    tested = finance.post(_url("client_webhook_test", shop.pk, endpoint.pk), headers=HTMX)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    wait_until(lambda: _delivered(delivery.pk), tick=run_ready_tasks, what="the test event")
    log = finance.get(_url("client_webhook_detail", shop.pk, endpoint.pk)).content.decode()
    replayed = finance.post(
        _url("client_webhook_replay", shop.pk, endpoint.pk, delivery.pk), headers=HTMX
    )
    queued_again = WebhookDelivery.objects.get(pk=delivery.pk).status
    wait_until(lambda: _delivered(delivery.pk), tick=run_ready_tasks, what="the replay")
    page = finance.get(_url("client_detail", shop.pk)).content.decode()

    assert registered.status_code == 200 and "no-store" in registered["Cache-Control"]
    assert same_secret, "the page shows another signing secret than the endpoint's"
    assert endpoint.events == ["order.delivered", "order.failed"]
    assert tested.status_code == 200 and "Test event queued" in tested.content.decode()
    assert f'id="delivery-{delivery.pk}"' in log and "HTTP 200" in log and "Replay" in log
    assert replayed.status_code == 200
    assert f"Delivery {delivery.pk} queued again" in replayed.content.decode()
    assert queued_again == "PENDING"
    assert len(hook.requests) == 2
    for action in ("webhook.endpoint_create", "webhook.test_send", "webhook.delivery_replay"):
        [event] = _events(action)
        assert _by_finance(event), action
    shown_again = unseal(endpoint.secret) in page
    assert not shown_again, "the signing secret is shown again"


def test_a_queued_delivery_is_not_replayed(finance, shop, receiver):
    _register(finance, shop, receiver().url)
    endpoint = WebhookEndpoint.objects.get(client=shop)
    finance.post(_url("client_webhook_test", shop.pk, endpoint.pk))
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)

    response = finance.post(
        _url("client_webhook_replay", shop.pk, endpoint.pk, delivery.pk), headers=HTMX
    )

    assert response.status_code == 409 and "still queued" in response.content.decode()
    assert _events("webhook.delivery_replay") == []


def test_a_private_webhook_url_is_refused_when_not_allowed(finance, shop, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = _register(finance, shop, "https://127.0.0.1/hooks", headers=HTMX)

    assert response.status_code == 400
    assert "destination not allowed: private network" in response.content.decode()
    assert SECRET_RE.search(response.content.decode()) is None
    assert not WebhookEndpoint.objects.exists()
    assert _events("webhook.endpoint_create") == []


def test_a_webhook_secret_is_rotated_once_and_an_endpoint_deactivated(finance, shop, receiver):
    _register(finance, shop, receiver().url)
    endpoint = WebhookEndpoint.objects.get(client=shop)

    rotated = finance.post(_url("client_webhook_rotate", shop.pk, endpoint.pk))
    deactivated = finance.post(_url("client_webhook_deactivate", shop.pk, endpoint.pk))
    test_after = finance.post(_url("client_webhook_test", shop.pk, endpoint.pk), headers=HTMX)

    endpoint.refresh_from_db()
    same_secret = _shown_secret(rotated) == unseal(endpoint.secret)
    assert rotated.status_code == 200 and same_secret, "not the endpoint's new signing secret"
    assert deactivated.status_code == 302 and not endpoint.is_active
    assert test_after.status_code == 400 and "deactivated" in test_after.content.decode()
    assert [_by_finance(e) for e in _events("webhook.secret_rotate")] == [True]
    assert [_by_finance(e) for e in _events("webhook.endpoint_deactivate")] == [True]


# --- Recent API errors --------------------------------------------------------------


def test_the_clients_recent_api_errors_are_listed(finance, shop):
    credential, secret = _issue(finance, shop)
    missing = _api(credential.public_key, secret, "/api/v1/orders/987654?token=not-kept")
    _api(credential.public_key, "a-wrong-secret")  # nobody identified: not recorded

    html = finance.get(_url("client_detail", shop.pk)).content.decode()

    assert missing.status_code == 404
    [record] = ApiErrorRecord.objects.filter(client=shop)
    assert (record.status, record.error_code, record.path) == (
        404,
        "not_found",
        "/api/v1/orders/987654",
    )
    assert "GET /api/v1/orders/987654" in html and "not_found" in html
    assert missing["X-Request-ID"] in html
    assert "not-kept" not in html


# --- Who may use it -----------------------------------------------------------------


@pytest.fixture
def any_client_url(shop, delivered_order) -> dict[str, str]:
    """A URL per workspace view, on real rows."""
    issued = credential_issue(client=shop, actor=Actor.system("test"))
    endpoint = WebhookEndpoint.objects.create(client=shop, url="https://h.example/", secret="s")
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="webhook.test", payload={})
    ids = {
        "client_list": (),
        "client_create": (),
        "client_detail": (shop.pk,),
        "client_wallet_open": (shop.pk,),
        "client_credential_issue": (shop.pk,),
        "client_webhook_create": (shop.pk,),
    }
    urls = {}
    for name in CLIENT_VIEWS:
        if name in ids:
            args: tuple[int, ...] = ids[name]
        elif "credential" in name:
            args = (shop.pk, issued.credential.pk)
        elif name == "client_webhook_replay":
            args = (shop.pk, endpoint.pk, delivery.pk)
        else:
            args = (shop.pk, endpoint.pk)
        urls[name] = _url(name, *args)
    return urls


@pytest.mark.parametrize("role", ["support", "inventory"])
def test_support_and_inventory_are_refused_every_workspace_view(as_role, role, any_client_url):
    client = as_role(role)

    answers = {
        name: (client.get(url) if name in ("client_list", "client_detail") else client.post(url))
        for name, url in any_client_url.items()
        if name != "client_webhook_detail"
    }
    answers["client_webhook_detail"] = client.get(any_client_url["client_webhook_detail"])

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 403)
    assert not ApiCredential.objects.filter(revoked_at__isnull=False).exists()


def test_the_clients_link_is_in_finance_and_admin_navigation_only(as_role):
    link = f'href="{_url("client_list")}"'

    shown = {
        role: link in as_role(role).get(reverse("dashboard:overview")).content.decode()
        for role in ("finance", "support", "inventory", "admin")
    }

    assert shown == {"finance": True, "support": False, "inventory": False, "admin": True}


def test_viewing_the_workspace_needs_view_client_too(users):
    holders = [
        role
        for role, user in users.items()
        if user.has_perm("orders.manage_clients") and not user.has_perm("orders.view_client")
    ]

    assert users["finance"].has_perm("orders.manage_clients")
    assert holders == []
