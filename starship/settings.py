"""Starship Orders settings.

Everything that differs between a laptop and production is read from the
environment; the defaults are safe for development and need no variables at
all (SQLite, local-memory cache, a generated development voucher key).
Every variable is listed in README.md's configuration table.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
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
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "orders",
]

MIDDLEWARE = [
    "orders.logs.RequestLogMiddleware",  # first: its line covers every answer
    "django.middleware.security.SecurityMiddleware",
    "starship.middleware.StaticFilesMiddleware",
    "starship.middleware.NoStoreMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "starship.middleware.IdleTimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "orders.dashboard.stepup.SecondFactorMiddleware",  # enrol / verify before anything else
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
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


def _server_database(url: str) -> dict[str, Any]:
    """A database server's settings from its URL: kept-alive, health-checked connections."""
    database: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    database["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL prepares the few statements that orders/selectors/prepared.py
    # runs through `statement_cursor` (the API's order read, placing's reads, audit
    # inserts), once per connection: planning the order read's joins costs the
    # server several times what running it does. Only those ask (a threshold no
    # statement reaches by count); Django's own cursors never prepare.
    # DATABASE_PREPARED_STATEMENTS=0 behind a pooler that keeps no prepared
    # statements between transactions.
    if env_bool("DATABASE_PREPARED_STATEMENTS", default=True) and database["ENGINE"].endswith(
        "postgresql"
    ):
        database.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
    return database


if DATABASE_URL:
    DATABASES = {"default": _server_database(DATABASE_URL)}
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
# A read replica of DATABASE_URL (a streaming standby): the dashboard's lists,
# overview and CSV exports read from it, everything else reads and writes the
# primary (orders/db_router.py, docs/decisions/0010-read-replica.md). Empty: no
# replica, every query on the primary. DATABASE_REPLICA_ALIAS is what the router
# reads; "" turns it off (the test settings define the alias and leave it off).
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_ALIAS = ""
if DATABASE_REPLICA_URL:
    if not DATABASE_URL:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL is a replica of DATABASE_URL: set both.")
    DATABASES["replica"] = _server_database(DATABASE_REPLICA_URL)
    DATABASE_REPLICA_ALIAS = "replica"
DATABASE_ROUTERS = ["orders.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The role the application connects as when it is not the tables' owner (see
# docs/deploy.md): `migrate`, run as the owner, grants it DML on every table but
# only SELECT and INSERT on the audit trail. Empty: no grants.
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="")

# --- Cache (rate limits, sessions) ------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "starship.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="starship"),
            # A Redis that stops answering fails a request in seconds (a 503 the
            # client retries) rather than holding it, and a gunicorn worker, until
            # Redis is back. A socket_timeout in REDIS_URL's query takes precedence.
            "OPTIONS": {
                "socket_connect_timeout": env_int("REDIS_TIMEOUT_SECONDS", default=2),
                "socket_timeout": env_int("REDIS_TIMEOUT_SECONDS", default=2),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background tasks -------------------------------------------------------
# django-tasks-db (a table of the database: the default, nothing else to run) or
# django-tasks-rq (RQ on Redis: RQ_REDIS_URL, else REDIS_URL). `run_worker` runs
# the worker of whichever is configured; docs/decisions/0009-rq-engine.md.
TASKS_BACKEND = env("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")
TASKS = {"default": {"BACKEND": TASKS_BACKEND}}
RQ_BACKEND = "django_tasks_rq.RQBackend"
RQ_REDIS_URL = env("RQ_REDIS_URL", default=REDIS_URL)
if TASKS_BACKEND == RQ_BACKEND:
    if not RQ_REDIS_URL:
        raise ImproperlyConfigured(f"TASKS_BACKEND={RQ_BACKEND} needs REDIS_URL or RQ_REDIS_URL.")
    INSTALLED_APPS.append("django_rq")
    # A Redis that stops answering must not hang a request that queues a task:
    # connect and command timeouts unless the URL sets its own (RQ's worker
    # lengthens the command timeout of its own connection for its blocking pop).
    _rq_timeouts = "socket_connect_timeout=2&socket_timeout=5"
    if "socket_timeout" not in RQ_REDIS_URL:
        RQ_REDIS_URL += ("&" if "?" in RQ_REDIS_URL else "?") + _rq_timeouts
    RQ_QUEUES = {
        "default": {
            "URL": RQ_REDIS_URL,
            # A job that runs longer is stopped (the lease and the sweeps resume its order).
            "DEFAULT_TIMEOUT": env_int("RQ_JOB_TIMEOUT_SECONDS", default=300),
        }
    }

# --- Auth and sessions ------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"
SESSION_ENGINE = "starship.sessions"
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

# Login throttling (django-axes): LOGIN_FAILURE_LIMIT failed sign-ins for one
# username, or from one IP address, lock further attempts (the right password
# too) until LOGIN_LOCKOUT_MINUTES pass without a new attempt. Counters live in
# the database, so every web process and host sees the same ones, with or
# without Redis. Unlock: admin "Access attempts", or `manage.py axes_reset`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one over the limit locks
# A success must not wipe the failures other usernames collected from that IP.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "orders.logins.lockout_response"
AXES_CLIENT_IP_CALLABLE = "orders.logins.client_ip"
# Wrong one-time codes count as failed sign-ins too; axes keeps a copy of the form it
# was posted (the password is always masked), so the code fields are masked too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code", "second_factor_code"]
AXES_VERBOSE = False  # no banner on every manage.py command; lockouts are logged and audited

# Second factor (django-otp: TOTP apps, single-use recovery codes; django-otp-webauthn:
# passkeys and security keys). With STAFF_2FA_REQUIRED every staff user enrols at first
# sign-in; a user who has enrolled is asked at every sign-in either way. Wrong codes and
# failed passkey assertions count as failed sign-ins (the limit above). The sensitive
# actions (reveal, refund and top-up approval, price changes) need a second factor used
# within STEP_UP_SECONDS; docs/decisions/0011-second-factor.md.
STAFF_2FA_REQUIRED = env_bool("STAFF_2FA_REQUIRED", default=not DEBUG)
STEP_UP_SECONDS = env_int("STEP_UP_SECONDS", default=15 * 60)
RECOVERY_CODE_COUNT = 10
# Keys the digests the database keeps instead of TOTP seeds and recovery codes
# (orders/models/staff.py). Changing it means every staff user enrols again; set it
# apart from DJANGO_SECRET_KEY to rotate that freely.
SECOND_FACTOR_KEY = env("SECOND_FACTOR_KEY", default="") or SECRET_KEY
# One throttle for every sign-in factor: django-axes' limit above. django-otp's own
# per-device back-off would also refuse the right code just after a typo, silently.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_TOTP_ISSUER = env("OTP_ISSUER", default="Starship Orders")
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
# The relying party is the host staff sign in on (WEBAUTHN_RP_ID overrides it, e.g. the
# parent domain); allowed origins: WEBAUTHN_ORIGINS, else the request's own origin.
WEBAUTHN_RP_ID = env("WEBAUTHN_RP_ID", default="")
WEBAUTHN_ORIGINS = env_list("WEBAUTHN_ORIGINS", default=[])
OTP_WEBAUTHN_RP_ID_CALLABLE = "orders.dashboard.passkeys.relying_party_id"
OTP_WEBAUTHN_HELPER_CLASS = "orders.dashboard.passkeys.PasskeyHelper"
# What django-otp-webauthn's system check reads; PasskeyHelper answers per request.
OTP_WEBAUTHN_ALLOWED_ORIGINS = WEBAUTHN_ORIGINS or ["http://localhost:8000"]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a passkey is the second factor, not the only one
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = "orders.passkeys"

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
# A load balancer probes over plain HTTP inside the network: no HTTPS redirect there.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Production (DEBUG off) is secure by default: HTTPS redirect, HSTS, Secure
# cookies. Opt out explicitly for plain HTTP on loopback (SECURE_SSL_REDIRECT=0
# SECURE_HSTS_SECONDS=0 SECURE_COOKIES=0); behind a TLS-terminating proxy set
# SECURE_PROXY_SSL_HEADER=1 instead (docs/deploy.md).
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
    # Preload only on request: with `preload` in the header anyone may submit the
    # domain to the browsers' list, binding every subdomain to HTTPS for months.
    SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0 and env_bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]  # preload not asked for: a decision, not a gap
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
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
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
# Delivery e-mails go out from a task after commit, never in a request: each
# SMTP operation gives up after EMAIL_TIMEOUT seconds (the mailer's "timeout";
# Django refuses an EMAIL_TIMEOUT setting beside MAILERS); a transient failure
# is tried EMAIL_MAX_ATTEMPTS times in all, EMAIL_RETRY_BASE_SECONDS apart, doubling.
_email_timeout = env_int("EMAIL_TIMEOUT", default=10)
EMAIL_MAX_ATTEMPTS = env_int("EMAIL_MAX_ATTEMPTS", default=3)
EMAIL_RETRY_BASE_SECONDS = env_int("EMAIL_RETRY_BASE_SECONDS", default=30)
MAILERS: dict[str, dict[str, object]] = {"default": {"BACKEND": _email_backend}}
if _email_backend == _smtp_backend:
    MAILERS["default"]["OPTIONS"] = {
        "host": env("EMAIL_HOST", default="localhost"),
        "port": env_int("EMAIL_PORT", default=25),
        "username": env("EMAIL_HOST_USER", default=""),
        "password": env("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env_bool("EMAIL_USE_TLS", default=False),
        "timeout": _email_timeout,
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
# Gift voucher links (delivery_method LINK): the claim URL is built on
# PUBLIC_BASE_URL (e.g. https://gifts.example.com) when set, else on the host the
# API was called on. A link stays claimable GIFT_LINK_EXPIRY_DAYS (or its
# product's gift_link_expiry_days), never longer than its voucher.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="").rstrip("/")
GIFT_LINK_EXPIRY_DAYS = env_int("GIFT_LINK_EXPIRY_DAYS", default=90)
API_JWT_TTL_SECONDS = env_int("API_JWT_TTL_SECONDS", default=900)
# After `rotate_credential`, the replaced secret keeps working this long (24 h).
API_SECRET_ROTATION_OVERLAP_SECONDS = env_int("API_SECRET_ROTATION_OVERLAP_SECONDS", default=86400)
AUTO_REFUND_LIMIT = env_decimal("AUTO_REFUND_LIMIT", default=Decimal("100.00"))
REFUND_SECOND_APPROVAL_LIMIT = env_decimal(
    "REFUND_SECOND_APPROVAL_LIMIT", default=Decimal("500.00")
)
# Staff top-ups and adjustments above this (absolute) amount wait for a second user.
WALLET_CREDIT_SECOND_APPROVAL_LIMIT = env_decimal(
    "WALLET_CREDIT_SECOND_APPROVAL_LIMIT", default=Decimal("1000.00")
)
FULFILMENT_RETRY_WINDOW_SECONDS = env_int("FULFILMENT_RETRY_WINDOW_SECONDS", default=3600)
FULFILMENT_RETRY_BASE_SECONDS = env_int("FULFILMENT_RETRY_BASE_SECONDS", default=5)
# Rates for paying from a wallet in another currency: "EUR/USD=1.08,GBP/USD=1.27"
# means 1 EUR costs 1.08 USD. The inverse direction is derived.
EXCHANGE_RATES = env("EXCHANGE_RATES", default="EUR/USD=1.08,GBP/USD=1.27,GBP/EUR=1.17")
AUDIT_CHAINS = env_int("AUDIT_CHAINS", default=16)
# AUDIT_KEY: "kid:base64key,kid:base64key" (HMAC keys of the audit chains, never
# in the database); the first seals new events, all verify. Without it, a
# development key is generated into AUDIT_DEV_KEY_FILE (git-ignored).
AUDIT_KEY = env("AUDIT_KEY", default="")
AUDIT_DEV_KEY_FILE = env("AUDIT_DEV_KEY_FILE", default=str(BASE_DIR / ".audit_key"))
# Every sealed batch appends (database, chain, seq, hash) of its newest event here and
# to the "orders.audit.checkpoint" log; check_audit_chain compares the database with it.
AUDIT_CHECKPOINT_PATH = env(
    "AUDIT_CHECKPOINT_PATH", default=str(BASE_DIR / "audit-checkpoints.jsonl")
)
# The worker seals new audit events into their chains every AUDIT_SEAL_SECONDS;
# check_audit_chain fails when an unsealed event is older than the max lag.
AUDIT_SEAL_SECONDS = float(env_decimal("AUDIT_SEAL_SECONDS", default=Decimal("1.0")))
AUDIT_SEAL_MAX_LAG_SECONDS = float(env_decimal("AUDIT_SEAL_MAX_LAG_SECONDS", default=Decimal("60")))
REVEAL_RATE_PER_HOUR = env_int("REVEAL_RATE_PER_HOUR", default=30)
# Dashboard: seconds a revealed voucher stays visible before it masks itself again.
REVEAL_REMASK_SECONDS = env_int("REVEAL_REMASK_SECONDS", default=30)
# Catalog: price changes above these sizes (measured from the product's value
# before any unapproved change in the window) wait for a second approver.
PRICE_CHANGE_APPROVAL_POINTS = env_decimal("PRICE_CHANGE_APPROVAL_POINTS", default=Decimal("5"))
PRICE_CHANGE_APPROVAL_FIXED_FEE = env_decimal(
    "PRICE_CHANGE_APPROVAL_FIXED_FEE", default=Decimal("1.00")
)
PRICE_CHANGE_APPROVAL_FACTOR = env_decimal("PRICE_CHANGE_APPROVAL_FACTOR", default=Decimal("2"))
PRICE_CHANGE_WINDOW_HOURS = env_int("PRICE_CHANGE_WINDOW_HOURS", default=24)
# Vendor adapters beyond the built-in ones: "key=dotted.path.Class,key2=…" (code, never input).
VENDOR_ADAPTERS = {
    key.strip(): path.strip()
    for key, _, path in (part.partition("=") for part in env_list("VENDOR_ADAPTERS", default=[]))
}

# --- Fulfilment engine (owner: fulfilment) ----------------------------------
# Simulated vendor: latency per call and the share of calls that fail
# transiently / are rejected (0..1). Defaults keep the demo predictable.
VENDOR_SIM_LATENCY_MS = env_int("VENDOR_SIM_LATENCY_MS", default=0)
VENDOR_SIM_TRANSIENT_RATE = env_decimal("VENDOR_SIM_TRANSIENT_RATE", default=Decimal("0"))
VENDOR_SIM_REJECT_RATE = env_decimal("VENDOR_SIM_REJECT_RATE", default=Decimal("0"))
# A fulfilment run or task older than this is presumed dead (worker killed)
# and is resumed by the recovery sweep. Keep it above the slowest vendor call.
TASK_LEASE_SECONDS = env_int("TASK_LEASE_SECONDS", default=300)
# Inventory fulfilment claims up to this many ready orders (PLACED, in stock)
# per run and delivers them in one short transaction.
FULFILMENT_BATCH_SIZE = env_int("FULFILMENT_BATCH_SIZE", default=50)
# Live orders of stocked products are delivered by the worker's stock batcher
# (`run_worker`), woken by each placed order on PostgreSQL and polling every
# FULFILMENT_POLL_SECONDS otherwise, instead of a task per order. 0: a task per
# order, as for every other kind of order.
FULFILMENT_STOCK_BATCHER = env_bool("FULFILMENT_STOCK_BATCHER", default=True)
FULFILMENT_POLL_SECONDS = float(env_decimal("FULFILMENT_POLL_SECONDS", default=Decimal("0.5")))
# Diagnostics and crash tests only: seconds a stock batch waits before it
# commits, so a kill can land inside it. 0 (the default) never waits.
FULFILMENT_BATCH_HOLD_SECONDS = float(
    env_decimal("FULFILMENT_BATCH_HOLD_SECONDS", default=Decimal("0"))
)
# How often `run_worker` runs the recovery, expiry and webhook sweeps.
WORKER_SWEEP_SECONDS = env_int("WORKER_SWEEP_SECONDS", default=30)
# How often each `run_worker` records its heartbeat (one row per process).
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", default=10)
# /readyz warns (and stays 200) when the newest worker heartbeat is older than
# this, or the oldest ready task or placed order has waited longer than that.
READYZ_WORKER_MAX_AGE_SECONDS = env_int("READYZ_WORKER_MAX_AGE_SECONDS", default=60)
READYZ_TASK_MAX_AGE_SECONDS = env_int("READYZ_TASK_MAX_AGE_SECONDS", default=300)
# With DATABASE_REPLICA_URL: /readyz warns when the replica's replay lags more.
READYZ_REPLICA_MAX_LAG_SECONDS = env_int("READYZ_REPLICA_MAX_LAG_SECONDS", default=30)
# /metrics answers a bearer of this token (Prometheus); empty: /metrics is 404.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Webhooks: first retry after WEBHOOK_RETRY_BASE_SECONDS, doubling (capped at
# an hour), until WEBHOOK_RETRY_HOURS after the event; each POST times out.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
WEBHOOK_RETRY_HOURS = env_int("WEBHOOK_RETRY_HOURS", default=24)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", default=5)
# Off (the default): webhooks go only to public addresses over https://, checked at
# registration and again, after DNS, before each delivery (SSRF). On: private,
# loopback and plain-http destinations too (development and tests only).
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
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
# The proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed:
# a request from one is the right-most forwarded address that is not a trusted
# proxy itself (orders/addresses.py). Empty: X-Forwarded-For is ignored and the
# client's address is REMOTE_ADDR (for the API allowlists, audit and sign-in).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", default=[])

# --- Logging ----------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (time, level, logger, message, request
# id, user / credential / order id); plain text otherwise (orders/logs.py).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "orders.logs.LogContext"},
        "drop_logged_refusals": {"()": "orders.logs.DropLoggedRefusals"},
        "redact_secret_paths": {"()": "orders.logs.RedactSecretPaths"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s",
            "timestamp": "time",  # ISO 8601, UTC
            "rename_fields": {"levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "drop_logged_refusals"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Replaces Django's default "django" logger, whose own console handler
        # (DEBUG only) printed every django.* line a second time, unformatted:
        # django.* now reaches the root handler only.
        "django": {"handlers": [], "level": env("LOG_LEVEL", default="INFO")},
        "django.db.backends": {"level": "WARNING"},
        # Django's lines naming a path: a gift link's token is redacted (orders/logs.py).
        "django.request": {"filters": ["redact_secret_paths"]},
        "django.security.csrf": {"filters": ["redact_secret_paths"]},
        "django.server": {"filters": ["redact_secret_paths"]},
        # One line per request (orders.logs.RequestLogMiddleware).
        "starship.request": {"level": env("REQUEST_LOG_LEVEL", default="INFO")},
    },
}
