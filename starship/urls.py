"""URL configuration: health, admin, API, dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from orders import gift_pages
from orders.api.api import api, api_not_found
from orders.dashboard import passkeys, twofactor
from starship.health import healthz, metrics_view, readyz

urlpatterns = [
    # --- Health: liveness and readiness, for load balancers (no sign-in) ---
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # --- API: v1, then JSON 404 for anything else under /api/ ---
    path("api/v1/", api.urls),
    re_path(r"^api/", api_not_found),
    # --- Dashboard: staff sign-in, the dashboard, / -> dashboard ---
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # --- The second factor: verify, enrol, recovery codes, passkeys (docs/decisions/0011) ---
    path("accounts/2fa/", twofactor.second_factor_security, name="second_factor_security"),
    path("accounts/2fa/verify/", twofactor.second_factor_verify, name="second_factor_verify"),
    path("accounts/2fa/setup/", twofactor.second_factor_setup, name="second_factor_setup"),
    path(
        "accounts/2fa/recovery-codes/",
        twofactor.recovery_codes_new,
        name="second_factor_recovery_codes",
    ),
    path(
        "accounts/2fa/passkeys/<int:passkey_id>/delete/",
        twofactor.passkey_delete,
        name="second_factor_passkey_delete",
    ),
    path("accounts/locked/", twofactor.second_factor_locked, name="second_factor_locked"),
    path("accounts/passkeys/", include((passkeys.urlpatterns, "otp_webauthn"))),
    path("dashboard/", include("orders.dashboard.urls")),
    # --- Gift links: the recipient's page; every /gift/ path is answered there, so
    # none reaches Django's logged 404 with a token in it ---
    re_path(r"^gift/(?P<token>.*)$", gift_pages.gift_link_page, name="gift_link"),
    path("", RedirectView.as_view(pattern_name="dashboard:overview"), name="home"),
]

# A database or Redis out of reach: the 503 page; anything else: the 500 page.
handler500 = "orders.dashboard.errors.server_error"
