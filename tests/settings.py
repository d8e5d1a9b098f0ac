"""Settings of the test process: production settings, spoken to over plain HTTP.

The suite runs with DEBUG off, as production does; the Django test client and
live_server speak http:// to 127.0.0.1, so the HTTPS redirect and HSTS are
opted out exactly as docs/deploy.md says for plain HTTP on loopback. Set here,
before starship.settings reads the environment (pytest-django loads settings
before any conftest), and inherited by the workers and servers tests start.
"""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")

from starship.settings import *  # noqa: F403
