"""Production settings: `check --deploy` is clean with a production environment."""

from __future__ import annotations

import base64
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
        if not key.startswith(("DJANGO_", "SECURE_", "VOUCHER_", "AUDIT_"))
        and key not in {"DATABASE_URL", "SQLITE_PATH"}
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="orders.example.com",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_SSL_REDIRECT="1",
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
