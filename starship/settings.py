"""Starship Orders settings.

Everything that differs between a laptop and production is read from the
environment; the defaults are safe for development and need no variables at
all (SQLite, local-memory cache, a generated development voucher key).
Every variable is listed in README.md's configuration table.
"""

from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from starship.env import env, env_bool, env_decimal, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    # Development only. The "django-insecure-" prefix makes `check --deploy`
    # fail (security.W009) when production forgets DJANGO_SECRET_KEY.
    SECRET_KEY = "django-insecure-starship-development-key-not-for-production-use"  # noqa: S105
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "ninja",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "starship.middleware.IdleTimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "starship.urls"
WSGI_APPLICATION = "starship.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # Dashboard: its template tags live outside an app's templatetags package.
            "libraries": {"dashboard": "orders.dashboard.templatetags.dashboard"},
        },
    },
]

# --- Database ---------------------------------------------------------------
# DATABASE_URL selects the database (postgres://… in production and CI).
# Without it, SQLite in WAL mode so the web server and the worker can share it.
DATABASE_URL = env("DATABASE_URL", default="")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, sessions) ------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="starship"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background tasks -------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    }
}

# --- Auth and sessions ------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Idle timeout: the session expires 15 minutes after the last request, give
# or take SESSION_REFRESH_SECONDS (starship.middleware.IdleTimeoutMiddleware
# refreshes it at most that often instead of saving it on every request).
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", default=15 * 60)
SESSION_REFRESH_SECONDS = env_int("SESSION_REFRESH_SECONDS", default=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security headers -------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
    SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
    if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- E-mail -----------------------------------------------------------------
# The console backend is the default only under DEBUG: in production delivery
# e-mails go over SMTP (EMAIL_HOST...) unless EMAIL_BACKEND says otherwise.
_smtp_backend = "django.core.mail.backends.smtp.EmailBackend"
_email_backend = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend" if DEBUG else _smtp_backend,
)
MAILERS: dict[str, dict[str, object]] = {"default": {"BACKEND": _email_backend}}
if _email_backend == _smtp_backend:
    MAILERS["default"]["OPTIONS"] = {
        "host": env("EMAIL_HOST", default="localhost"),
        "port": env_int("EMAIL_PORT", default=25),
        "username": env("EMAIL_HOST_USER", default=""),
        "password": env("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env_bool("EMAIL_USE_TLS", default=False),
    }
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="rewards@starship.example")

# --- Voucher encryption -----------------------------------------------------
# VOUCHER_KEYS: "kid:base64key,kid:base64key"; the first key is the active one
# that encrypts, the others only decrypt. VOUCHER_FINGERPRINT_KEY keys the
# duplicate-detection fingerprint. Without them, a development keyring is
# generated into VOUCHER_DEV_KEYS_FILE (git-ignored) with a warning.
VOUCHER_KEYS = env("VOUCHER_KEYS", default="")
VOUCHER_FINGERPRINT_KEY = env("VOUCHER_FINGERPRINT_KEY", default="")
VOUCHER_DEV_KEYS_FILE = env("VOUCHER_DEV_KEYS_FILE", default=str(BASE_DIR / ".voucher_keys.json"))

# --- Business rules ---------------------------------------------------------
API_JWT_TTL_SECONDS = env_int("API_JWT_TTL_SECONDS", default=900)
AUTO_REFUND_LIMIT = env_decimal("AUTO_REFUND_LIMIT", default=Decimal("100.00"))
REFUND_SECOND_APPROVAL_LIMIT = env_decimal(
    "REFUND_SECOND_APPROVAL_LIMIT", default=Decimal("500.00")
)
FULFILMENT_RETRY_WINDOW_SECONDS = env_int("FULFILMENT_RETRY_WINDOW_SECONDS", default=3600)
FULFILMENT_RETRY_BASE_SECONDS = env_int("FULFILMENT_RETRY_BASE_SECONDS", default=5)
# Rates for paying from a wallet in another currency: "EUR/USD=1.08,GBP/USD=1.27"
# means 1 EUR costs 1.08 USD. The inverse direction is derived.
EXCHANGE_RATES = env("EXCHANGE_RATES", default="EUR/USD=1.08,GBP/USD=1.27,GBP/EUR=1.17")
AUDIT_CHAINS = env_int("AUDIT_CHAINS", default=16)
REVEAL_RATE_PER_HOUR = env_int("REVEAL_RATE_PER_HOUR", default=30)
# Dashboard: seconds a revealed voucher stays visible before it masks itself again.
REVEAL_REMASK_SECONDS = env_int("REVEAL_REMASK_SECONDS", default=30)

# --- Fulfilment engine (owner: fulfilment) ----------------------------------
# Simulated vendor: latency per call and the share of calls that fail
# transiently / are rejected (0..1). Defaults keep the demo predictable.
VENDOR_SIM_LATENCY_MS = env_int("VENDOR_SIM_LATENCY_MS", default=0)
VENDOR_SIM_TRANSIENT_RATE = env_decimal("VENDOR_SIM_TRANSIENT_RATE", default=Decimal("0"))
VENDOR_SIM_REJECT_RATE = env_decimal("VENDOR_SIM_REJECT_RATE", default=Decimal("0"))
# A fulfilment run or task older than this is presumed dead (worker killed)
# and is resumed by the recovery sweep. Keep it above the slowest vendor call.
TASK_LEASE_SECONDS = env_int("TASK_LEASE_SECONDS", default=300)
# How often `run_worker` runs the recovery, expiry and webhook sweeps.
WORKER_SWEEP_SECONDS = env_int("WORKER_SWEEP_SECONDS", default=30)
# Webhooks: first retry after WEBHOOK_RETRY_BASE_SECONDS, doubling (capped at
# an hour), until WEBHOOK_RETRY_HOURS after the event; each POST times out.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_HOURS = env_int("WEBHOOK_RETRY_HOURS", default=24)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", default=5)
# --- end fulfilment engine ----------------------------------------------------

# --- API (orders/api) -------------------------------------------------------
# Per-credential rate limits: fixed windows counted in the cache (Redis when
# REDIS_URL is set, so every gunicorn worker shares them).
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", default=200)
API_RATE_LIMIT_PER_10_SECONDS = env_int("API_RATE_LIMIT_PER_10_SECONDS", default=20)
API_RATE_LIMIT_ORDER_READS_PER_HOUR = env_int("API_RATE_LIMIT_ORDER_READS_PER_HOUR", default=60)
# A credential lookup may be served from the cache this long: a revoked key or
# a deactivated client is refused at most this many seconds later.
API_CREDENTIAL_CACHE_SECONDS = env_int("API_CREDENTIAL_CACHE_SECONDS", default=5)
# A request body over this many bytes is answered 413 before it is read.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", default=1024 * 1024)

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replaces Django's default "django" logger, whose own console handler
        # (DEBUG only) printed every django.* line a second time, unformatted:
        # django.* now reaches the root handler only.
        "django": {"handlers": [], "level": env("LOG_LEVEL", default="INFO")},
        "django.db.backends": {"level": "WARNING"},
    },
}
