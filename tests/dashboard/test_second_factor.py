"""The staff second factor: enrolment at first sign-in, verification, recovery codes,
lockout after wrong codes, step-up for sensitive actions, the admin behind it and the
audited reset."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken

from orders.models import AuditEvent, PriceChange, SealedTOTPDevice
from tests.factories import ProductFactory, UserFactory, WalletCreditRequestFactory
from tests.helpers.dashboard import CARD_NUMBER, PIN
from tests.helpers.second_factor import app_code, enrol_app, enrol_recovery_codes, wrong_code

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def required(settings):
    settings.STAFF_2FA_REQUIRED = True
    return settings


def browser(ip: str = "203.0.113.50") -> Client:
    return Client(REMOTE_ADDR=ip, HTTP_USER_AGENT="Mozilla/5.0 (pytest)")


def sign_in(client: Client, username: str, next_path: str = "/dashboard/"):
    return client.post(
        f"{reverse('login')}?next={next_path}",
        {"username": username, "password": PASSWORD, "next": next_path},
    )


def verify(client: Client, code: str, next_path: str = "/dashboard/"):
    return client.post(reverse("second_factor_verify"), {"code": code, "next": next_path})


def test_first_sign_in_enrols_an_app_with_qr_and_text_secret_then_recovery_codes(required):
    user = UserFactory(username="fin-new", role="finance")
    client = browser()

    signed = sign_in(client, "fin-new")
    assert signed.status_code == 302
    # Every staff page sends an unenrolled user to enrolment, keeping where they were going.
    refused = client.get("/dashboard/orders/")
    assert refused.status_code == 302
    assert refused["Location"] == "/accounts/2fa/setup/?next=%2Fdashboard%2Forders%2F"

    page = client.get(refused["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    assert 'src="data:image/svg+xml' in html  # the QR code
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', html).group(1)
    device = SealedTOTPDevice.objects.get(user=user, confirmed=False)
    assert secret.replace(" ", "") in device.config_url

    wrong = client.post(
        reverse("second_factor_setup"), {"code": wrong_code(device), "next": "/dashboard/orders/"}
    )
    assert wrong.status_code == 400 and "does not match" in wrong.content.decode()

    done = client.post(
        reverse("second_factor_setup"), {"code": app_code(device), "next": "/dashboard/orders/"}
    )
    codes = re.findall(r"<li>([0-9a-f]{5}-[0-9a-f]{5})</li>", done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "no-store" in done["Cache-Control"]
    assert client.get("/dashboard/orders/").status_code == 200
    actions = list(
        AuditEvent.objects.filter(action__startswith="auth.").values_list("action", flat=True)
    )
    assert "auth.second_factor_enrolled" in actions and "auth.recovery_codes_issued" in actions


def test_the_database_holds_neither_the_app_seed_nor_the_recovery_codes(required):
    user = UserFactory(username="fin-seed", role="finance")
    device = enrol_app(user)
    codes = enrol_recovery_codes(user)
    assert device.key != device.bin_key.hex()  # the column is a salt, the seed is derived
    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & {code.replace("-", "") for code in codes}
    assert not stored & set(codes)


def test_an_enrolled_user_verifies_at_every_sign_in_even_when_not_required(settings):
    settings.STAFF_2FA_REQUIRED = False
    user = UserFactory(username="sup-enrolled", role="support")
    device = enrol_app(user)
    client = browser()

    sign_in(client, "sup-enrolled")
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/verify/?next=")
    # htmx fragments are sent on as a whole-page redirect
    fragment = client.get("/dashboard/orders/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 204 and fragment["HX-Redirect"].startswith("/accounts/2fa/")

    half_signed_in = client.session.session_key
    assert verify(client, app_code(device)).status_code == 302
    assert client.session.session_key != half_signed_in  # a new session id once verified
    assert client.get("/dashboard/").status_code == 200
    event = AuditEvent.objects.get(action="auth.second_factor_verified")
    assert event.data == {"user": user.pk, "method": "app", "purpose": "sign_in"}


def test_a_user_without_a_second_factor_is_not_asked_when_not_required(settings):
    settings.STAFF_2FA_REQUIRED = False
    UserFactory(username="sup-demo", role="support")
    client = browser()
    sign_in(client, "sup-demo")
    assert client.get("/dashboard/").status_code == 200


def test_a_recovery_code_works_exactly_once(required):
    user = UserFactory(username="fin-recovery", role="finance")
    enrol_app(user)
    codes = enrol_recovery_codes(user)

    first = browser("203.0.113.51")
    sign_in(first, "fin-recovery")
    assert verify(first, codes[0].upper()).status_code == 302  # case and dash forgiven
    assert first.get("/dashboard/").status_code == 200

    second = browser("203.0.113.52")
    sign_in(second, "fin-recovery")
    again = verify(second, codes[0])
    assert again.status_code == 400 and "not valid" in again.content.decode()
    assert verify(second, codes[1]).status_code == 302
    event = AuditEvent.objects.filter(action="auth.second_factor_verified").order_by("pk").last()
    assert event.data["method"] == "recovery" and event.data["recovery_codes_left"] == 8


def test_five_wrong_codes_lock_the_account_even_for_the_right_password(required):
    user = UserFactory(username="fin-guess", role="finance")
    device = enrol_app(user)
    client = browser("203.0.113.60")
    sign_in(client, "fin-guess")

    for _ in range(4):
        assert verify(client, wrong_code(device)).status_code == 400
    fifth = verify(client, wrong_code(device))

    assert fifth.status_code == 429 and "Sign-in locked" in fifth.content.decode()
    assert "_auth_user_id" not in client.session  # signed out
    assert client.get("/dashboard/").status_code == 302
    again = sign_in(browser("203.0.113.61"), "fin-guess")  # the right password, elsewhere
    assert again.status_code == 429
    assert AuditEvent.objects.filter(action="auth.locked_out").count() >= 1


# --- Step-up ---------------------------------------------------------------------------


def _verified_client(user, device, ip="203.0.113.70") -> Client:
    client = browser(ip)
    sign_in(client, user.username)
    assert verify(client, app_code(device)).status_code == 302
    return client


def _age_step_up(client: Client, seconds: int) -> None:
    session = client.session
    session["second_factor_at"] -= seconds
    session.save()


def _reveal(client: Client, voucher, extra=None, htmx=True):
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": f"voucher-{voucher.pk}"} if htmx else {}
    return client.post(
        reverse("dashboard:voucher_reveal", args=[voucher.pk]),
        {"reason": "not_received", "note": "ticket 7", **(extra or {})},
        **headers,
    )


def test_a_reveal_within_the_window_needs_no_second_code(required, users, delivered_order):
    _, voucher = delivered_order
    user = get_user_model().objects.get(username="support-user")
    client = _verified_client(user, enrol_app(user))
    response = _reveal(client, voucher)
    assert CARD_NUMBER in response.content.decode()


def test_a_reveal_after_the_window_asks_inline_and_then_continues(required, users, delivered_order):
    _, voucher = delivered_order
    user = get_user_model().objects.get(username="support-user")
    device = enrol_app(user)
    client = _verified_client(user, device)
    _age_step_up(client, 901)

    challenge = _reveal(client, voucher)
    html = challenge.content.decode()
    assert challenge.status_code == 200 and "Confirm it" in html
    assert CARD_NUMBER not in html and PIN not in html
    assert f'id="voucher-{voucher.pk}"' in html  # swapped where the voucher was
    assert 'name="reason" value="not_received"' in html  # the form is posted again
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()

    wrong = _reveal(client, voucher, {"second_factor_code": wrong_code(device)})
    assert "not valid" in wrong.content.decode() and CARD_NUMBER not in wrong.content.decode()

    done = _reveal(client, voucher, {"second_factor_code": app_code(device)})
    assert CARD_NUMBER in done.content.decode()
    assert AuditEvent.objects.filter(action="voucher.reveal").count() == 1
    step_up = AuditEvent.objects.filter(action="auth.second_factor_verified").order_by("pk").last()
    assert step_up.data["purpose"] == "step_up"
    # the window is open again: the next reveal goes straight through
    assert CARD_NUMBER in _reveal(client, voucher).content.decode()


def test_a_plain_form_post_gets_a_challenge_page(required, users, delivered_order):
    _, voucher = delivered_order
    user = get_user_model().objects.get(username="support-user")
    client = _verified_client(user, enrol_app(user))
    _age_step_up(client, 901)
    page = _reveal(client, voucher, htmx=False)
    html = page.content.decode()
    assert "<html" in html and "Confirm and continue" in html and CARD_NUMBER not in html


def test_wrong_step_up_codes_count_toward_the_lockout(required, users, delivered_order):
    _, voucher = delivered_order
    user = get_user_model().objects.get(username="support-user")
    device = enrol_app(user)
    client = _verified_client(user, device, ip="203.0.113.80")
    _age_step_up(client, 901)
    for _ in range(4):
        _reveal(client, voucher, {"second_factor_code": wrong_code(device)})
    fifth = _reveal(client, voucher, {"second_factor_code": wrong_code(device)})
    assert fifth.status_code == 204 and fifth["HX-Redirect"] == reverse("second_factor_locked")
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="voucher.reveal").exists()


def test_refund_and_top_up_approval_ask_for_the_second_factor(required, users):
    finance = users["finance"]
    client = _verified_client(finance, enrol_app(finance), ip="203.0.113.90")
    _age_step_up(client, 901)
    credit = WalletCreditRequestFactory()
    response = client.post(
        reverse("dashboard:credit_decide", args=[credit.pk]),
        {"decision": "approve"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="credit-requests",
    )
    assert "Confirm it" in response.content.decode()
    credit.refresh_from_db()
    assert credit.status == "PENDING"
    refunds = client.post(reverse("dashboard:refund_decide"), {"decision": "approve"})
    assert "Confirm and continue" in refunds.content.decode()


# --- The admin ---------------------------------------------------------------------------


def test_the_admin_needs_the_second_factor_too(required):
    admin_user = UserFactory(username="root-2fa", role="admin")
    device = enrol_app(admin_user)
    client = browser("203.0.113.100")
    assert client.get("/admin/login/?next=/admin/")["Location"].startswith("/accounts/login/")
    sign_in(client, "root-2fa", next_path="/admin/")
    assert client.get("/admin/")["Location"].startswith("/accounts/2fa/verify/")
    verify(client, app_code(device), next_path="/admin/")
    assert client.get("/admin/").status_code == 200
    # Devices are not edited or deleted in the admin (only the audited reset).
    assert client.get("/admin/otp_totp/totpdevice/").status_code == 404


def test_an_admin_resets_a_second_factor_with_a_reason_audited(required):
    admin_user = UserFactory(username="root-reset", role="admin")
    client = _verified_client(admin_user, enrol_app(admin_user), ip="203.0.113.110")
    lost = UserFactory(username="lost-phone", role="support")
    enrol_app(lost)
    enrol_recovery_codes(lost)
    changelist = reverse("admin:auth_user_changelist")
    form = {"action": "reset_second_factor", "_selected_action": [lost.pk]}

    asked = client.post(changelist, form)
    assert asked.status_code == 200 and "Reason" in asked.content.decode()
    no_reason = client.post(changelist, {**form, "confirm": "1", "reason": " "})
    assert "Say why" in no_reason.content.decode()
    assert SealedTOTPDevice.objects.filter(user=lost).exists()

    done = client.post(changelist, {**form, "confirm": "1", "reason": "lost phone, ticket 9"})
    assert done.status_code == 302
    assert not SealedTOTPDevice.objects.filter(user=lost).exists()
    assert not StaticToken.objects.filter(device__user=lost).exists()
    event = AuditEvent.objects.get(action="auth.second_factor_reset")
    assert event.actor_user_id == admin_user.pk and event.reason == "lost phone, ticket 9"
    assert event.data["username"] == "lost-phone"

    # the reset user enrols again at their next sign-in
    again = browser("203.0.113.111")
    sign_in(again, "lost-phone")
    assert again.get("/dashboard/")["Location"].startswith("/accounts/2fa/setup/")


def test_approving_a_price_change_in_the_admin_asks_for_the_second_factor(required):
    admin_user = UserFactory(username="root-price", role="admin")
    client = _verified_client(admin_user, enrol_app(admin_user), ip="203.0.113.120")
    _age_step_up(client, 901)
    change = PriceChange.objects.create(
        product=ProductFactory(),
        changes={"discount_percent": {"before": "0.000", "after": "40.000"}},
        status=PriceChange.Status.PENDING,
        requested_by=UserFactory(username="inv-proposer", role="inventory"),
        requested_label="user:inv-proposer",
    )
    response = client.post(
        reverse("admin:orders_pricechange_changelist"),
        {"action": "approve", "_selected_action": [change.pk]},
    )
    assert "Confirm and continue" in response.content.decode()
    change.refresh_from_db()
    assert change.status == PriceChange.Status.PENDING


def test_failed_passkey_assertions_count_toward_the_lockout(required):
    user = UserFactory(username="sup-badkey", role="support")
    enrol_app(user)
    client = browser("203.0.113.130")
    sign_in(client, "sup-badkey")
    forged = {
        "id": "AAAAAAAAAAAAAAAAAAAAAA",
        "rawId": "AAAAAAAAAAAAAAAAAAAAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"},
        "clientExtensionResults": {},
    }
    answers = []
    for _ in range(5):
        begun = client.post(
            "/accounts/passkeys/authentication/begin/", "{}", content_type="application/json"
        )
        assert begun.status_code == 200 and "challenge" in begun.json()
        answers.append(
            client.post(
                "/accounts/passkeys/authentication/complete/",
                forged,
                content_type="application/json",
            )
        )
    assert all(400 <= answer.status_code < 500 for answer in answers[:4])
    assert answers[-1].status_code == 429 and answers[-1].json()["code"] == "locked_out"
    assert "_auth_user_id" not in client.session
    assert sign_in(browser("203.0.113.131"), "sup-badkey").status_code == 429


def test_a_passkey_is_never_the_only_factor(required):
    anonymous = browser("203.0.113.140")
    refused = anonymous.post(
        "/accounts/passkeys/authentication/begin/", "{}", content_type="application/json"
    )
    assert refused.status_code == 403


def test_the_operator_resets_a_second_factor_from_the_command_line(required):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    user = UserFactory(username="only-admin", role="admin")
    enrol_app(user)
    with pytest.raises(CommandError):
        call_command("reset_second_factor", "only-admin", reason="  ")
    call_command("reset_second_factor", "only-admin", reason="sole admin lost phone")
    assert not SealedTOTPDevice.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="auth.second_factor_reset")
    assert event.actor_label == "manage.py reset_second_factor"
    assert event.reason == "sole admin lost phone"


def test_issuing_an_api_credential_asks_for_the_second_factor_first(required, users):
    from orders.models import ApiCredential
    from tests.factories import ClientFactory

    finance = users["finance"]
    device = enrol_app(finance)
    client = _verified_client(finance, device, ip="203.0.113.150")
    _age_step_up(client, 901)
    partner = ClientFactory()
    url = reverse("dashboard:client_credential_issue", args=[partner.pk])
    form = {"mode": "live", "label": "checkout", "scopes": ["orders:read"]}
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "client-body"}

    challenge = client.post(url, form, **headers)
    assert "Confirm it" in challenge.content.decode()
    assert not ApiCredential.objects.filter(client=partner).exists()

    issued = client.post(url, {**form, "second_factor_code": app_code(device)}, **headers)
    assert issued.status_code == 200
    assert ApiCredential.objects.filter(client=partner, label="checkout").count() == 1


def test_a_recovery_code_of_decimal_digits_only_is_still_a_recovery_code(required):
    from orders.services.second_factor import second_factor_check
    from tests.helpers.second_factor import enrol_recovery_code

    user = UserFactory(username="fin-digits", role="finance")
    enrol_app(user)
    code = enrol_recovery_code(user, "0123456789")  # hex digits that happen to be decimal
    verified = second_factor_check(user=user, token=code)
    assert verified is not None and verified.method == "recovery"
    assert second_factor_check(user=user, token=code) is None  # once
