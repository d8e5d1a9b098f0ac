"""Who may open what: every dashboard URL for every role, CSP, CSRF, sessions."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from orders.enums import OrderStatus
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

OK, REDIRECT, FORBIDDEN = 200, 302, 403
ROLES = ["support", "finance", "inventory", "admin"]

# (name, method, expected status per role in ROLES order)
MATRIX = [
    ("overview", "get", [OK, OK, OK, OK]),
    ("order_list", "get", [OK, OK, FORBIDDEN, OK]),
    ("order_detail", "get", [OK, OK, FORBIDDEN, OK]),
    ("order_row", "get", [OK, OK, FORBIDDEN, OK]),
    ("voucher_masked", "get", [OK, OK, FORBIDDEN, OK]),
    ("audit_log", "get", [FORBIDDEN, FORBIDDEN, FORBIDDEN, OK]),
    ("voucher_reveal", "post", [OK, FORBIDDEN, FORBIDDEN, OK]),
    ("order_cancel", "post", [REDIRECT, FORBIDDEN, FORBIDDEN, REDIRECT]),
    ("order_retry", "post", [REDIRECT, FORBIDDEN, FORBIDDEN, REDIRECT]),
    ("order_resend", "post", [REDIRECT, FORBIDDEN, FORBIDDEN, REDIRECT]),
]


def _url(name: str, order, voucher) -> str:
    if name in ("voucher_masked", "voucher_reveal"):
        return reverse(f"dashboard:{name}", args=[voucher.pk])
    if name.startswith("order_") and name != "order_list":
        return reverse(f"dashboard:{name}", args=[order.pk])
    return reverse(f"dashboard:{name}")


def _call(client: Client, name: str, method: str, url: str):
    headers = {"HTTP_HX_REQUEST": "true"} if name in ("voucher_masked", "order_row") else {}
    if method == "get":
        return client.get(url, **headers)
    data = {"reason": "invalid", "note": "matrix"} if name == "voucher_reveal" else {"reason": "x"}
    return client.post(url, data, **headers)


@pytest.mark.parametrize(("name", "method", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(as_role, delivered_order, name, method, expected, role):
    order, voucher = delivered_order
    response = _call(as_role(role), name, method, _url(name, order, voucher))
    assert response.status_code == expected[ROLES.index(role)], response.content[:500]


@pytest.mark.parametrize(("name", "method", "_expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_anonymous_is_sent_to_login_with_next(as_role, delivered_order, name, method, _expected):
    order, voucher = delivered_order
    url = _url(name, order, voucher)
    response = getattr(as_role(None), method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=" in response["Location"]


def test_expired_session_on_an_htmx_request_sends_the_page_to_login(as_role):
    response = as_role(None).get(
        reverse("dashboard:order_list"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/dashboard/orders/?status=FAILED",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/accounts/login/?next=")
    assert "status%3DFAILED" in response["HX-Redirect"]


def test_login_returns_to_the_page_in_next(users, client):
    url = reverse("login") + "?next=/dashboard/orders/%3Fstatus%3DFAILED"
    page = client.get(url)
    assert page.status_code == 200
    assert b"Sign in" in page.content
    response = client.post(
        url,
        {
            "username": "support-user",
            "password": "correct-horse-battery",
            "next": "/dashboard/orders/?status=FAILED",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/orders/?status=FAILED"


def test_activity_extends_the_idle_timeout_at_most_once_a_minute(support_client, settings):
    overview = reverse("dashboard:overview")
    assert settings.SESSION_COOKIE_AGE == 15 * 60
    first = support_client.get(overview)
    assert first.cookies["sessionid"]["max-age"] == 15 * 60
    # Within the refresh window the session is neither written nor re-sent.
    again = support_client.get(overview)
    assert again.status_code == 200 and "sessionid" not in again.cookies
    # A minute later, activity pushes the expiry 15 minutes forward again.
    session = support_client.session
    session["_seen"] -= settings.SESSION_REFRESH_SECONDS
    session.save()
    later = support_client.get(overview)
    assert later.cookies["sessionid"]["max-age"] == 15 * 60


def test_background_polling_does_not_keep_an_idle_session_alive(support_client, settings):
    order = OrderFactory(status=OrderStatus.PENDING)
    page = support_client.get(reverse("dashboard:order_list"))
    assert b"X-Background-Poll" in page.content  # the open order's row polls itself
    session = support_client.session
    session["_seen"] -= settings.SESSION_REFRESH_SECONDS
    session.save()
    poll = support_client.get(
        reverse("dashboard:order_row", args=[order.pk]),
        headers={"HX-Request": "true", "X-Background-Poll": "true"},
    )
    assert poll.status_code == 200 and "sessionid" not in poll.cookies
    clicked = support_client.get(reverse("dashboard:order_list"))
    assert clicked.cookies["sessionid"]["max-age"] == 15 * 60


def test_an_idle_session_signs_the_user_out(support_client):
    session = support_client.session
    session.set_expiry(-1)  # what 15 minutes without a request leave behind
    session.save()
    response = support_client.get(reverse("dashboard:order_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_logout_is_a_post_form(support_client):
    page = support_client.get(reverse("dashboard:overview"))
    assert f'action="{reverse("logout")}"'.encode() in page.content
    assert support_client.get(reverse("logout")).status_code == 405
    response = support_client.post(reverse("logout"))
    assert response.status_code == 302
    assert support_client.get(reverse("dashboard:overview")).status_code == 302


def test_root_redirects_to_the_dashboard(support_client):
    response = support_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:overview")


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        ("support", ["Orders", "Overview"], ["Audit log", "Django admin"]),
        ("finance", ["Orders", "Overview"], ["Audit log", "Django admin"]),
        ("inventory", ["Overview"], ["Orders", "Audit log", "Django admin"]),
        ("admin", ["Orders", "Overview", "Audit log", "Django admin"], []),
    ],
)
def test_navigation_shows_only_what_the_role_may_use(as_role, role, shown, hidden):
    html = as_role(role).get(reverse("dashboard:overview")).content.decode()
    nav = html[html.index('<nav class="nav"') : html.index("</nav>")]
    for label in shown:
        assert f">{label}</a>" in nav
    for label in hidden:
        assert f">{label}</a>" not in nav


PAGES = [
    ("overview", "overview-body"),
    ("order_list", "order-results"),
    ("order_detail", "order-body"),
    ("audit_log", "audit-results"),
]


@pytest.mark.parametrize(("name", "fragment_id"), PAGES)
def test_each_page_is_a_full_page_or_a_partial_for_htmx(
    as_role, delivered_order, name, fragment_id
):
    order, _ = delivered_order
    url = _url(name, order, None)
    client = as_role("admin")
    page = client.get(url)
    assert page.status_code == 200
    assert b"<html" in page.content
    assert f'id="{fragment_id}"'.encode() in page.content
    partial = client.get(url, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert b"<html" not in partial.content
    assert partial.content.lstrip().startswith(b"<")
    assert f'id="{fragment_id}"'.encode() in partial.content


@pytest.mark.parametrize("name", [p[0] for p in PAGES])
def test_each_page_carries_a_csp_with_a_nonce_used_by_every_script(as_role, delivered_order, name):
    order, _ = delivered_order
    response = as_role("admin").get(_url(name, order, None))
    policy = response["Content-Security-Policy"]
    assert "'nonce-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    html = response.content.decode()
    assert "<script" in html
    for tag in html.split("<script")[1:]:
        assert f'nonce="{nonce}"' in tag.split(">", 1)[0]
    assert " onclick=" not in html and " onchange=" not in html and " style=" not in html


def test_login_page_carries_a_csp(client):
    response = client.get(reverse("login"))
    assert "'nonce-" in response["Content-Security-Policy"]


def test_a_post_without_the_csrf_token_is_refused(users, delivered_order):
    _, voucher = delivered_order
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["support"])
    url = reverse("dashboard:voucher_reveal", args=[voucher.pk])
    assert client.post(url, {"reason": "invalid"}).status_code == 403
    page = client.get(reverse("dashboard:order_detail", args=[voucher.order_item.order_id]))
    token = page.content.decode().split('"X-CSRFToken": "', 1)[1].split('"', 1)[0]
    ok = client.post(url, {"reason": "invalid"}, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200


def test_unknown_order_is_a_404_page(support_client):
    response = support_client.get(reverse("dashboard:order_detail", args=[999999]))
    assert response.status_code == 404


@pytest.mark.parametrize(("name", "method", "_expected"), MATRIX, ids=[m[0] for m in MATRIX])
@pytest.mark.parametrize("role", ["support", "admin"])
def test_no_dashboard_answer_may_be_cached(as_role, delivered_order, name, method, _expected, role):
    """Pages with customer data or vouchers: neither the browser nor a proxy keeps them."""
    order, voucher = delivered_order
    response = _call(as_role(role), name, method, _url(name, order, voucher))
    assert "no-store" in response["Cache-Control"], (name, response.get("Cache-Control"))
    assert "private" in response["Cache-Control"]


@pytest.mark.parametrize(
    "url",
    ["admin:index", "admin:orders_order_changelist", "admin:orders_order_change"],
)
def test_no_admin_page_may_be_cached(as_role, delivered_order, url):
    order, _ = delivered_order
    args = [order.pk] if url.endswith("_change") else []
    response = as_role("admin").get(reverse(url, args=args))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
