"""Logging: every configured secret is replaced in every record, whoever wrote it, and
the libraries that print tokens at DEBUG stay at INFO."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.ops.logs import QUIET, QUIET_AT_DEBUG, configure_logging
from bot.storage import Database, migrate
from bot.storage.sessions import ConsoleSessionStore
from tests.databases import database_url_for

SECRETS = {
    "telegram": {
        "bot_token": "7000001:TEST-token_abcdefghijklmnopqrstuvwxyz",
        "webhook_secret": "hook-secret_0123456789",
    },
    "slack": {
        "bot_token": "xoxb-slack-bot-secret",
        "app_token": "xapp-slack-app-secret",
        "signing_secret": "slack-signing-secret-value",
    },
    "llm": {"api_key": "sk-openai-secret-value", "anthropic_api_key": "sk-ant-secret-value"},
    "email": {"password": "smtp-password-value"},
    "admin": {"console_password": "console-password-value"},
    "database": {"url": "postgresql://parley:db%2Fpassword-value@db:5432/parley"},
}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging replaces the root's handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*QUIET, *QUIET_AT_DEBUG)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def settings() -> Settings:
    return Settings.load(env_file=None, **SECRETS)


def every_secret() -> list[tuple[str, str]]:
    return [(value, name) for value, name in settings().secrets().items()]


def test_every_secret_setting_is_found_by_its_type() -> None:
    names = set(settings().secrets().values())
    assert names == {
        "TELEGRAM_BOT_TOKEN",
        "PARLEY_TELEGRAM_WEBHOOK_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "SMTP_PASSWORD",
        "PARLEY_ADMIN_PASSWORD",
        "DATABASE_URL password",
    }
    assert settings().secrets()["db/password-value"] == "DATABASE_URL password"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_secret_survives_in_message_args_or_exception(
    fmt: str, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", fmt, secrets=settings().secrets())
    for value, _ in every_secret():
        # A library's own logger, the secret in the format string, in an argument, and in
        # an exception's text (percent-encoded too, as in a URL).
        logging.getLogger("some.library").warning("calling https://api.example/bot%s/getMe", value)
        logging.getLogger("other").error(f"inline {value}")
        try:
            raise RuntimeError(f"GET /x?key={value}&again={value.replace(':', '%3A')}")
        except RuntimeError:
            logging.getLogger("bot.turn.engine").exception("request failed")
    output = capfd.readouterr().err
    for value, name in every_secret():
        assert value not in output
        assert value.replace(":", "%3A") not in output
        assert f"[{name}]" in output
    assert "Traceback" in output and "RuntimeError" in output
    if fmt == "json":
        lines = [json.loads(line) for line in output.splitlines()]
        assert any("[TELEGRAM_BOT_TOKEN]" in line.get("exception", "") for line in lines)


def test_libraries_that_print_tokens_stay_at_info_when_parley_debugs(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging("DEBUG", "text", secrets={})
    logging.getLogger("telegram.ext.ExtBot").debug("Set Bot API URL: http://x/bot123:abc")
    logging.getLogger("httpx").info("HTTP Request: POST http://x/bot123:abc/getMe")
    logging.getLogger("bot.turn.engine").debug("parley's own debug line")
    output = capfd.readouterr().err
    assert "bot123:abc" not in output
    assert "parley's own debug line" in output


def test_quieted_libraries_never_speak_below_the_root_level(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging("WARNING", "text")
    logging.getLogger("telegram.ext.Updater").info("an info line of a quieted library")
    logging.getLogger("telegram.ext.Updater").warning("a warning of a quieted library")
    output = capfd.readouterr().err
    assert "an info line" not in output and "a warning of a quieted library" in output


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url_for(request, tmp_path) as url:
        yield url


async def test_sql_parameters_are_never_logged_even_at_debug(
    database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """What goes into the database (a console session's CSRF token and password tag,
    an email's subject) never reaches the log, whatever PARLEY_LOG_LEVEL says."""
    await migrate(database_url)
    configure_logging("DEBUG", "text", secrets={})
    database = Database(database_url)
    try:
        store = ConsoleSessionStore(database)
        await store.create(
            token_hash="hash-in-a-parameter",
            csrf="csrf-in-a-parameter",
            password_tag="tag-in-a-parameter",
            client="127.0.0.1",
            lifetime=timedelta(hours=1),
            idle=timedelta(hours=1),
        )
        assert await store.find("hash-in-a-parameter", idle=timedelta(hours=1)) is not None
    finally:
        await database.aclose()
    logging.getLogger("bot.storage").debug("parley's own debug line")
    output = capfd.readouterr().err
    assert "parley's own debug line" in output
    for parameter in ("hash-in-a-parameter", "csrf-in-a-parameter", "tag-in-a-parameter"):
        assert parameter not in output
