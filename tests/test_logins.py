"""Sign-in throttling on /accounts/login/ (the admin signs in there too): lockouts, their
audit, unlock."""

from __future__ import annotations

import json

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from orders.models import AuditEvent
from tests.factories import UserFactory

RIGHT = "correct-horse-battery"
WRONG = "Tr0ub4dor&3-guess"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(db):
    # A superuser: the admin sign-in would let them in as well as the dashboard's.
    return UserFactory(username="mira", role="admin")


def browser(ip: str = "203.0.113.7") -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT="Mozilla/5.0 (pytest)")


def sign_in(client: Client, page: str, username: str, password: str):
    return client.post(reverse(page), {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_account_even_for_the_right_password(staff):
    page = "login"
    client = browser()
    for _ in range(5):
        refused = sign_in(client, page, "mira", WRONG)
        assert not signed_in(client)

    response = sign_in(client, page, "mira", RIGHT)

    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert not signed_in(client)
    body = response.content.decode()
    assert "Sign-in locked" in body
    assert "Too many failed sign-in attempts" in body
    assert "15 minutes" in body
    assert refused.status_code == 429  # the fifth failure already answers the lockout page


def test_four_wrong_passwords_still_let_the_right_one_in(staff):
    page = "login"
    client = browser()
    for _ in range(4):
        assert sign_in(client, page, "mira", WRONG).status_code == 200

    response = sign_in(client, page, "mira", RIGHT)

    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_admin_signs_in_through_the_staff_sign_in(staff, method):
    client = browser()
    response = getattr(client, method)(reverse("admin:login") + "?next=/admin/orders/order/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Forders%2Forder%2F"
    assert not signed_in(client)  # a password posted there signs nobody in


def test_a_locked_username_is_refused_from_another_address_too(staff):
    for _ in range(5):
        sign_in(browser("198.51.100.1"), "login", "mira", WRONG)

    elsewhere = browser("192.0.2.99")
    response = sign_in(elsewhere, "login", "mira", RIGHT)

    assert response.status_code == 429
    assert not signed_in(elsewhere)


def test_five_failures_from_one_address_lock_every_username_there(staff, db):
    UserFactory(username="nova", role="support")
    client = browser("198.51.100.20")
    for n in range(5):
        sign_in(client, "login", f"guess-{n}", WRONG)

    refused = sign_in(client, "login", "nova", RIGHT)
    other_address = browser("198.51.100.21")
    allowed = sign_in(other_address, "login", "nova", RIGHT)

    assert refused.status_code == 429 and not signed_in(client)
    assert allowed.status_code == 302 and signed_in(other_address)


def test_a_lockout_is_audited_once_without_the_password(staff):
    client = browser("198.51.100.30")
    for _ in range(5):
        sign_in(client, "login", "mira", WRONG)
    for _ in range(3):  # refused attempts during the lockout add no event each
        sign_in(client, "login", "mira", RIGHT)

    events = list(AuditEvent.objects.filter(action="auth.locked_out"))

    assert len(events) == 1
    event = events[0]
    assert event.ip_address == "198.51.100.30"
    assert event.user_agent == "Mozilla/5.0 (pytest)"
    assert event.actor_user_id is None
    assert event.data["username"] == "mira"
    assert sorted(event.data["locked"]) == ["ip_address", "username"]
    recorded = json.dumps(event.data) + event.reason
    assert WRONG not in recorded and RIGHT not in recorded
    stored = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert WRONG not in stored and RIGHT not in stored


def test_an_admin_unlock_lets_the_user_in_and_is_audited(staff, db):
    locked = browser("198.51.100.40")
    for _ in range(5):
        sign_in(locked, "login", "mira", WRONG)
    assert sign_in(locked, "login", "mira", RIGHT).status_code == 429

    boss = UserFactory(username="boss", role="admin")
    admin_client = browser("192.0.2.1")
    admin_client.force_login(boss)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert b"mira" in admin_client.get(changelist).content
    response = admin_client.post(
        changelist,
        {
            "action": "unlock",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
        },
    )

    assert response.status_code == 302
    assert AccessAttempt.objects.count() == 0
    unlock = AuditEvent.objects.get(action="auth.unlocked")
    assert unlock.actor_user_id == boss.pk
    assert unlock.data["usernames"] == ["mira"]
    assert unlock.data["ip_addresses"] == ["198.51.100.40"]
    assert sign_in(locked, "login", "mira", RIGHT).status_code == 302
    assert signed_in(locked)


def test_deleting_failed_sign_ins_in_the_admin_is_audited_too(staff, db):
    for _ in range(2):
        sign_in(browser("198.51.100.50"), "login", "mira", WRONG)
    attempt = AccessAttempt.objects.get()
    boss = UserFactory(username="boss", role="admin")
    admin_client = browser("192.0.2.1")
    admin_client.force_login(boss)

    response = admin_client.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert AuditEvent.objects.get(action="auth.unlocked").data["usernames"] == ["mira"]


@pytest.mark.parametrize("role", ["support", "finance", "inventory"])
def test_staff_roles_cannot_unlock(db, role):
    user = UserFactory(username=f"{role}-user", role=role)
    client = browser()
    client.force_login(user)
    response = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert response.status_code in (302, 403)


def test_sign_in_pages_are_never_cached(staff):
    client = browser()
    for response in (client.get(reverse("login")), sign_in(client, "login", "mira", WRONG)):
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]
