"""Production settings: `check --deploy` is clean with a production environment."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_", "VOUCHER_", "LOGIN_", "AUDIT_", "STAFF_"))
        and key not in {"DATABASE_URL", "DATABASE_REPLICA_URL", "SQLITE_PATH", "STATIC_ROOT"}
    }
    # Only what production must provide: no HTTPS, HSTS or cookie variable at all.
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        VOUCHER_KEYS=f"k1:{_key()}",
        VOUCHER_FINGERPRINT_KEY=_key(),
        AUDIT_KEY=f"a1:{_key()}",
        AUDIT_CHECKPOINT_PATH=str(tmp_path / "audit-checkpoints.jsonl"),
        AUDIT_DEV_KEY_FILE=str(tmp_path / "audit_key"),
        # Never touch the working tree's database or development keyring.
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        VOUCHER_DEV_KEYS_FILE=str(tmp_path / "voucher_keys.json"),
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _check_deploy(_production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def _settings(env: dict[str, str], *names: str) -> dict[str, object]:
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "starship.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_replica_url_adds_the_replica_alias_with_the_primarys_options(tmp_path):
    primary = "postgres://app:secret@primary.internal:5432/starship"
    replica = "postgres://app:secret@replica.internal:5432/starship"
    names = ("DATABASES", "DATABASE_REPLICA_ALIAS", "DATABASE_ROUTERS")

    alone = _settings(_production_env(tmp_path, DATABASE_URL=primary), *names)
    both = _settings(
        _production_env(tmp_path, DATABASE_URL=primary, DATABASE_REPLICA_URL=replica), *names
    )

    assert set(alone["DATABASES"]) == {"default"} and alone["DATABASE_REPLICA_ALIAS"] == ""
    assert both["DATABASE_REPLICA_ALIAS"] == "replica"
    assert both["DATABASE_ROUTERS"] == ["orders.db_router.ReplicaRouter"]
    default, copy = both["DATABASES"]["default"], both["DATABASES"]["replica"]
    assert copy["HOST"] == "replica.internal" and default["HOST"] == "primary.internal"
    for option in ("ENGINE", "NAME", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "OPTIONS"):
        assert copy[option] == default[option], option
    assert copy["OPTIONS"]["prepare_threshold"] == 2**31 - 1


def test_a_replica_without_a_primary_url_is_refused(tmp_path):
    env = _production_env(tmp_path, DATABASE_REPLICA_URL="postgres://app@replica.internal/db")
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _settings(env, "DATABASES")
    assert "DATABASE_REPLICA_URL is a replica of DATABASE_URL" in refused.value.stderr


SECURITY = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
)


def test_production_is_secure_by_default(tmp_path):
    assert _settings(_production_env(tmp_path), *SECURITY) == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_production_requires_a_staff_second_factor_and_make_run_does_not(tmp_path):
    names = ("STAFF_2FA_REQUIRED", "STEP_UP_SECONDS")
    production = _settings(_production_env(tmp_path), *names)
    debugging = _settings(_production_env(tmp_path, DJANGO_DEBUG="1"), *names)
    opted_out = _settings(_production_env(tmp_path, STAFF_2FA_REQUIRED="0"), *names)
    assert production == {"STAFF_2FA_REQUIRED": True, "STEP_UP_SECONDS": 900}
    assert debugging["STAFF_2FA_REQUIRED"] is False
    assert opted_out["STAFF_2FA_REQUIRED"] is False
    run_script = (ROOT / "scripts" / "run.sh").read_text()
    assert "export STAFF_2FA_REQUIRED=${STAFF_2FA_REQUIRED:-0}" in run_script


def test_plain_http_on_loopback_and_a_tls_proxy_are_explicit_opt_outs(tmp_path):
    loopback = _production_env(
        tmp_path, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SECURE_COOKIES="0"
    )
    proxied = _production_env(tmp_path, SECURE_PROXY_SSL_HEADER="1", SECURE_HSTS_PRELOAD="1")

    plain = _settings(loopback, *SECURITY)
    behind_proxy = _settings(proxied, *SECURITY)

    assert plain["SECURE_SSL_REDIRECT"] is False and plain["SECURE_HSTS_SECONDS"] == 0
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["CSRF_COOKIE_SECURE"] is False
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert behind_proxy["SECURE_SSL_REDIRECT"] is True and behind_proxy["SECURE_HSTS_PRELOAD"]


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"VOUCHER_KEYS": None, "VOUCHER_FINGERPRINT_KEY": None}, "orders.W001"),
        ({"DJANGO_SECRET_KEY": "short", "SECURE_HSTS_SECONDS": "0"}, "security.W009"),
        ({"AUDIT_KEY": None}, "orders.E001"),
    ],
    ids=["no-voucher-keys", "weak-secret-key", "no-audit-key"],
)
def test_check_deploy_fails_on_a_real_settings_gap(tmp_path, overrides, warning):
    result = _check_deploy(_production_env(tmp_path, **overrides))

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_under_debug_a_worker_log_line_is_printed_once_and_formatted(tmp_path):
    """`make run` (DEBUG) used to print each task line twice: once bare from Django's
    own "django" console handler, once formatted from the root handler."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DJANGO_DEBUG="1", SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.tasks').info('Task id=42 state=SUCCESSFUL')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "starship.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "id=42" in line]
    assert len(lines) == 1
    assert " INFO django.tasks Task id=42" in lines[0]


def test_in_production_smtp_has_the_email_timeout(tmp_path):
    """Delivery e-mails go over SMTP with EMAIL_TIMEOUT on every operation (10 s by default)."""
    script = (
        "import django; django.setup(); from django.core.mail import mailers; "
        "m = mailers.default; print(type(m).__name__, m.host, m.timeout)"
    )

    def mailer(**overrides: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={
                **_production_env(tmp_path, **overrides),
                "DJANGO_SETTINGS_MODULE": "starship.settings",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    assert mailer() == "EmailBackend localhost 10"
    assert (
        mailer(EMAIL_TIMEOUT="3", EMAIL_HOST="smtp.example.com")
        == "EmailBackend smtp.example.com 3"
    )
