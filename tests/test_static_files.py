"""Static files are never silently missing: a server started without
`collectstatic` still serves the dashboard's CSS and htmx."""

from __future__ import annotations

import gzip
import http.client
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import RequestFactory

from tests.helpers.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


@pytest.fixture
def gunicorn_without_collectstatic(tmp_path: Path) -> Iterator[int]:
    """gunicorn with DEBUG off on 127.0.0.1, STATIC_ROOT an empty directory."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="starship.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="0",
        SECURE_COOKIES="0",
        STATIC_ROOT=str(tmp_path / "never-collected"),
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        VOUCHER_DEV_KEYS_FILE=str(tmp_path / "voucher_keys.json"),
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "starship.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        pause = threading.Event()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                _get(port, "/accounts/login/")
                break
            except OSError:
                pause.wait(0.1)
        else:
            raise AssertionError("gunicorn did not answer within 60 s")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_gunicorn_without_collectstatic_serves_the_css_and_htmx(gunicorn_without_collectstatic):
    port = gunicorn_without_collectstatic
    status, _, page = _get(port, "/accounts/login/")
    assert status == 200
    html = page.decode()
    htmx = re.search(r'<script src="(/static/django_htmx/[^"]+)"', html)
    css = re.search(r'<link rel="stylesheet" href="(/static/[^"]+\.css)"', html)
    assert htmx and css, html

    script_status, script_type, script = _get(port, htmx.group(1))
    css_status, css_type, _ = _get(port, css.group(1))

    assert script_status == 200
    assert "javascript" in script_type
    assert b"htmx" in script
    assert css_status == 200
    assert css_type.startswith("text/css")


def test_a_collected_file_wins_over_its_source(settings, tmp_path):
    """The fallback never replaces what collectstatic wrote (nor its .gz variant)."""
    collected = tmp_path / "static-root" / "css"
    collected.mkdir(parents=True)
    body = b"/* collected */" * 100
    (collected / "app.css").write_bytes(body)
    (collected / "app.css.gz").write_bytes(gzip.compress(body))
    settings.STATIC_ROOT = str(tmp_path / "static-root")
    settings.DEBUG = False
    from starship.middleware import StaticFilesMiddleware

    middleware = StaticFilesMiddleware(lambda request: None)

    response = middleware(RequestFactory().get("/static/css/app.css", HTTP_ACCEPT_ENCODING="gzip"))
    uncollected = middleware(RequestFactory().get("/static/js/dashboard.js"))

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == body
    assert uncollected.status_code == 200
    assert uncollected["Content-Type"].startswith("text/javascript")


def test_a_missing_static_file_is_still_a_404(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path / "empty")
    settings.DEBUG = False
    from starship.middleware import StaticFilesMiddleware

    middleware = StaticFilesMiddleware(lambda request: "the application")

    assert middleware(RequestFactory().get("/static/no-such-file.js")) == "the application"
    assert middleware(RequestFactory().get("/static/../manage.py")) == "the application"
