"""Logging set-up: readable lines by default, one JSON object per line on request.

Every line written inside a turn carries that turn's id (`turn_id` in JSON, `[id]` in
text), set by the engine through a context variable, so one turn can be followed across
the engine, the tools and the adapter. Message bodies are not logged unless
PARLEY_LOG_BODIES is on; secrets never are, whoever logs them (bot/ops/redact.py), and SQL
parameters never are, at any level (the database loggers stay at WARNING).
"""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.ops.observe import TurnIdFilter
from bot.ops.redact import SecretFilter


def loggable(text: str) -> str:
    """Someone else's text as one log line: line breaks and every other control or
    format character (ANSI escapes, bidi overrides) written as escapes (`\\n`,
    `\\x1b`, `\\u202e`), so a message cannot forge log lines or hide what it says."""
    return "".join(
        char
        if char == " " or unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp")
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        turn_id = getattr(record, "turn_id", "")
        record.turn = f" [{turn_id}]" if turn_id else ""
        return super().format(record)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn_id = getattr(record, "turn_id", "")
        if turn_id:
            entry["turn_id"] = turn_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            # SecretFilter has redacted exc_text already: use it, never a fresh rendering.
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


# Libraries whose DEBUG lines print URLs or headers that carry tokens: never below INFO.
# (python-telegram-bot logs its Bot API URL, token included; slack_sdk its requests.)
QUIET_AT_DEBUG = ("telegram", "slack_sdk", "slack_bolt", "apscheduler", "mcp")
# The HTTP clients and SDKs log every request at INFO: noise, and URLs may carry tokens.
# The database drivers and SQLAlchemy's engine log each statement with its parameters
# (a user's words, an email's subject, a console session's CSRF token and password tag).
QUIET = (
    "httpx",
    "httpx2",
    "httpcore",
    "openai",
    "anthropic",
    "uvicorn.access",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
)


def configure_logging(
    level: str = "INFO", fmt: str = "text", *, secrets: Mapping[str, str] | None = None
) -> None:
    """One stderr handler on the root logger, with the turn id and `SecretFilter` on it,
    so every record, whichever logger wrote it, loses the `secrets` ({value: setting name})
    it mentions."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TurnIdFilter())
    handler.addFilter(SecretFilter(secrets or {}))
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s%(turn)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Only ever raised above the root's level: INFO set on a library under a WARNING root
    # would let its INFO lines through.
    for name in QUIET_AT_DEBUG:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
