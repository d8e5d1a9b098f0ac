"""Settings for benchmarks only: never for a deployment, never for tests.

Production-shaped (DEBUG off, the production middleware, persistent database
connections, Redis when REDIS_URL is set) but never throttled, so a load run
measures the server rather than the rate limiter:

    DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=postgres://… gunicorn starship.wsgi

Everything else (DATABASE_URL, REDIS_URL, voucher keys) is read from the
environment exactly as starship.settings reads it.
"""

from starship.env import env
from starship.settings import *  # noqa: F403
from starship.settings import CACHES, LOGGING, REDIS_URL

DEBUG = False
ROOT_URLCONF = "bench.urls"  # the project's URLs plus /bench/constant.json
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
# Load runs speak plain HTTP to 127.0.0.1: a redirect to https would measure nothing.
SECURE_SSL_REDIRECT = False

# --- Never throttled --------------------------------------------------------
# The limiter still runs (its cache round trips are part of every request's
# cost); only its limits are out of reach.
_UNREACHABLE = 1_000_000_000
API_RATE_LIMIT_PER_MINUTE = _UNREACHABLE
API_RATE_LIMIT_PER_10_SECONDS = _UNREACHABLE
API_RATE_LIMIT_ORDER_READS_PER_HOUR = _UNREACHABLE
# A token issued at the start of a run outlives the whole run.
API_JWT_TTL_SECONDS = 4 * 3600

# --- Cache ------------------------------------------------------------------
# With REDIS_URL (as in production with several workers) keep the benchmark's
# keys apart from anything else in that Redis.
if REDIS_URL:
    CACHES["default"]["KEY_PREFIX"] = env("CACHE_KEY_PREFIX", default="starship-bench")

# --- Logging ----------------------------------------------------------------
# Warnings and errors only: a 4xx under load must not turn into a log flood
# that the disk, not the server, then limits.
_LEVEL = env("LOG_LEVEL", default="WARNING")
LOGGING = {
    **LOGGING,
    "root": {"handlers": ["console"], "level": _LEVEL},
    "loggers": {
        **LOGGING["loggers"],
        "django": {**LOGGING["loggers"]["django"], "level": _LEVEL},
        "starship.request": {"level": _LEVEL},  # no line per request under load
    },
}
