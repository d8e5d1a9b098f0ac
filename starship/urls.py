"""URL configuration: health, admin, API, dashboard."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from orders.api.api import api, api_not_found
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
    path("dashboard/", include("orders.dashboard.urls")),
    path("", RedirectView.as_view(pattern_name="dashboard:overview"), name="home"),
]

# A database or Redis out of reach: the 503 page; anything else: the 500 page.
handler500 = "orders.dashboard.errors.server_error"
