"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live_server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(
        reason=f"browser tests need Chromium at {CHROMIUM} (apt install chromium)"
    )
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture
def e2e_settings(settings: Any) -> Any:
    """The live server speaks plain http on 127.0.0.1: cookies cannot be Secure there."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.REVEAL_REMASK_SECONDS = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@dataclass
class BrowserProblems:
    """Console errors and CSP violations seen in the page, asserted empty at the end."""

    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def assert_none(self) -> None:
        assert self.csp_violations == [], self.csp_violations
        assert self.console_errors == [], self.console_errors


@pytest.fixture
def problems(page: Any) -> Iterator[BrowserProblems]:
    seen = BrowserProblems()
    page.on(
        "console",
        lambda message: (
            seen.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: seen.console_errors.append(str(error)))

    def report(violation: str) -> None:
        seen.csp_violations.append(violation)

    page.expose_function("__reportCspViolation", report)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', function (e) {"
        " window.__reportCspViolation(e.violatedDirective + ' ' + e.blockedURI); });"
    )
    yield seen
