"""Settings of the test process: production settings, spoken to over plain HTTP.

The suite runs with DEBUG off, as production does; the Django test client and
live_server speak http:// to 127.0.0.1, so the HTTPS redirect and HSTS are
opted out exactly as docs/deploy.md says for plain HTTP on loopback. Set here,
before starship.settings reads the environment (pytest-django loads settings
before any conftest), and inherited by the workers and servers tests start.
"""

import os
from copy import deepcopy

os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
# The webhook tests deliver to a receiver on 127.0.0.1 over http://; the SSRF
# tests (tests/api/test_webhooks.py) turn this off with the `settings` fixture.
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "1")
# Staff users of the suite sign in with a password (or force_login) and no second
# factor unless a test enrols one; the second-factor tests (tests/dashboard/
# test_second_factor.py, tests/e2e/test_second_factor.py) turn the requirement on.
os.environ.setdefault("STAFF_2FA_REQUIRED", "0")


def _redis_db(url: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


# On RQ (CI's run of the `engines` tests with TASKS_BACKEND=django_tasks_rq.RQBackend)
# each pytest-xdist worker has two Redis databases of its own: its cache (flushed
# between tests) and its RQ queues (emptied before each test), so two test
# processes never take each other's jobs. Workers and servers the tests start
# inherit both.
if os.environ.get("TASKS_BACKEND") == "django_tasks_rq.RQBackend":
    _n = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    _base = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    os.environ["REDIS_URL"] = _redis_db(_base, 1 + 2 * _n)
    os.environ["RQ_REDIS_URL"] = _redis_db(_base, 2 + 2 * _n)

from starship.settings import *  # noqa: E402, F403

# A second alias of the test database, as DATABASE_REPLICA_URL makes one in
# production: a test mirror (no database of its own; its connection reads what
# "default" committed, so tests using it are transactional). The router leaves
# it alone (DATABASE_REPLICA_ALIAS stays "") unless a test sets
# `settings.DATABASE_REPLICA_ALIAS = "replica"` (tests/test_db_router.py); no
# other test can reach it, since a test may query only the aliases it names.
DATABASE_REPLICA_ALIAS = ""
DATABASES["replica"] = {**deepcopy(DATABASES["default"]), "TEST": {"MIRROR": "default"}}  # noqa: F405
