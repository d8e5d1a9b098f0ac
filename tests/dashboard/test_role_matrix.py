"""The role matrix: every dashboard URL, for every staff role, staff without a role and
an anonymous visitor, checked against the one permissions table.

The cases come from `PERMISSIONS` and the dashboard's URLconf, never from a hand
list: a URL without a row, or a row without a URL, fails here. What a role may do
comes from `orders.roles`, so the table, the roles and the views' decorators are
checked against each other. The methods of a view are the ones it answers (the
`Allow` header of its 405), so a view that accepts GET and POST is tried with both.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from orders.dashboard import urls as dashboard_urls
from orders.dashboard.permissions import PERMISSIONS
from orders.roles import ROLES, role_permissions
from orders.services.actors import Actor
from orders.services.clients import credential_issue
from tests.factories import (
    ImportBatchFactory,
    UserFactory,
    WalletCreditRequestFactory,
    WalletFactory,
    delivered_webhook,
)
from tests.helpers.dashboard import client_for

pytestmark = pytest.mark.django_db

SUPERUSER = "admin"  # the role name orders.roles gives a superuser
NO_ROLE = "staff-without-role"
ANONYMOUS = "anonymous"
VISITORS = [*ROLES, NO_ROLE, ANONYMOUS]


def _named_patterns(patterns: list[Any], namespace: str = "") -> dict[str | None, URLPattern]:
    """Every URL pattern of the dashboard by name ("ns:name" below a nested namespace);
    a pattern without a name is kept under None."""
    found: dict[str | None, URLPattern] = {}
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found.update(_named_patterns(entry.url_patterns, inner))
        elif isinstance(entry, URLPattern):
            found[f"{namespace}{entry.name}" if entry.name else None] = entry
    return found


DASHBOARD_URLS = _named_patterns(dashboard_urls.urlpatterns)
VIEWS = sorted({*(name for name in DASHBOARD_URLS if name), *PERMISSIONS})


def test_every_dashboard_url_has_a_row_in_the_permissions_table():
    assert None not in DASHBOARD_URLS, "a dashboard URL has no name, so no row can cover it"
    missing = sorted(name for name in DASHBOARD_URLS if name and name not in PERMISSIONS)
    assert missing == [], f"add these views to orders.dashboard.permissions.PERMISSIONS: {missing}"


def test_every_row_of_the_permissions_table_has_a_dashboard_url():
    orphans = sorted(name for name in PERMISSIONS if name not in DASHBOARD_URLS)
    assert orphans == [], f"rows of PERMISSIONS with no URL in orders.dashboard.urls: {orphans}"


@pytest.fixture
def url_args(delivered_order) -> dict[str, Any]:
    """A value for each argument a dashboard URL takes: real rows, so an allowed
    visitor never meets a 404."""
    order, voucher = delivered_order
    wallet = WalletFactory(client=order.client)
    issued = credential_issue(client=order.client, actor=Actor.system("role matrix"))
    delivery = delivered_webhook(order, url="https://partner.example/hooks")
    return {
        "order_id": order.pk,
        "voucher_id": voucher.pk,
        "batch_id": ImportBatchFactory(product=order.product).pk,
        "wallet_id": wallet.pk,
        "request_id": WalletCreditRequestFactory(wallet=wallet).pk,
        "action": "revoke",  # an action of both the voucher and the batch URLs
        # The clients workspace: the order's client, its credential and webhook.
        "client_id": order.client_id,
        "credential_id": issued.credential.pk,
        "endpoint_id": delivery.endpoint_id,
        "delivery_id": delivery.pk,
    }


def _url(name: str, url_args: dict[str, Any]) -> str:
    arguments = list(DASHBOARD_URLS[name].pattern.regex.groupindex)
    unknown = [argument for argument in arguments if argument not in url_args]
    assert not unknown, f"dashboard:{name} takes {unknown}: give url_args a value for it"
    return reverse(f"dashboard:{name}", kwargs={a: url_args[a] for a in arguments})


def _methods(url: str) -> list[str]:
    """The methods the view answers, from the 405 its method decorator gives OPTIONS."""
    probe = client_for(UserFactory(username="matrix-probe", role=SUPERUSER)).options(url)
    assert probe.status_code == 405 and probe.has_header("Allow"), (
        f"{url}: declare the view's methods (@require_GET, @require_POST ...)"
    )
    return [method.strip() for method in probe["Allow"].split(",")]


def _visitor(visitor: str) -> Client:
    if visitor == ANONYMOUS:
        return client_for(None)
    role = None if visitor == NO_ROLE else visitor
    return client_for(UserFactory(username=f"matrix-{visitor}", role=role))


def _may_use(visitor: str, name: str) -> bool:
    """What orders.roles grants: a superuser everything, a role its permissions."""
    if visitor == ANONYMOUS:
        return False
    return visitor == SUPERUSER or PERMISSIONS[name] in role_permissions(visitor)


def _sent_to_login(response: HttpResponse) -> bool:
    login = reverse("login")
    if response.status_code == 302:
        return bool(response["Location"].startswith(f"{login}?next="))
    return response.get("HX-Redirect", "").startswith(f"{login}?next=")


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("name", VIEWS)
def test_role_matrix(name: str, visitor: str, htmx: bool, url_args: dict[str, Any]):
    assert name in PERMISSIONS, f"dashboard:{name} has no row in PERMISSIONS"
    assert name in DASHBOARD_URLS, f"PERMISSIONS[{name!r}] has no dashboard URL"
    url = _url(name, url_args)
    client = _visitor(visitor)
    headers = {"HX-Request": "true"} if htmx else {}
    for method in _methods(url):
        # No form data: the permission is checked before any input is read.
        response = getattr(client, method.lower())(url, headers=headers)
        answer = (method, response.status_code, response.get("Location", ""))
        if visitor == ANONYMOUS:
            assert response.status_code == (204 if htmx else 302), answer
            assert _sent_to_login(response), answer
        elif _may_use(visitor, name):
            assert response.status_code not in (403, 404, 405), answer
            assert response.status_code < 500, answer
            assert not _sent_to_login(response), answer
        else:
            assert response.status_code == 403, answer
