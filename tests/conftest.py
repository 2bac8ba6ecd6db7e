"""Fixtures for every test: a clean environment, and the switch for PostgreSQL tests.

Each test runs in its own empty working directory with Parley's variables removed from
the environment, so neither a developer's shell nor their `.env` can change a result.
Tests that need PostgreSQL ask for `postgres_url`: they are skipped unless
`PARLEY_TEST_POSTGRES` names a server, and fail loudly if it names one that is down.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest_plugins = [
    "tests.fakes.fixtures",
    "tests.fakes.slack_fixtures",
    "tests.fakes.telegram_fixtures",
    "tests.apps",
    "tests.tools.real_mcp_servers",
]

# Captured at import, before `clean_environ` removes every PARLEY_* variable.
POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES", "").strip()

CLEARED_PREFIXES = ("PARLEY_", "SLACK_", "TELEGRAM_", "OPENAI_", "ANTHROPIC_", "SMTP_")
CLEARED_NAMES = frozenset({"DATABASE_URL"})


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Remove Parley's variables and run the test from an empty directory."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of a reachable PostgreSQL server, from PARLEY_TEST_POSTGRES."""
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL tests need PARLEY_TEST_POSTGRES=postgresql://user@host:port/db (CI sets it)"
        )
    parts = urlsplit(POSTGRES_URL)
    shown = POSTGRES_URL.replace(f":{parts.password}@", ":***@") if parts.password else POSTGRES_URL
    try:
        host, port = parts.hostname or "localhost", parts.port or 5432
    except ValueError as exc:
        pytest.fail(f"PARLEY_TEST_POSTGRES={shown} is not a valid URL: {exc}", pytrace=False)
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError as exc:
        pytest.fail(
            f"PARLEY_TEST_POSTGRES={shown} is set but {host}:{port} is unreachable: {exc}. "
            "Start PostgreSQL or unset the variable to skip these tests.",
            pytrace=False,
        )
    return POSTGRES_URL
