"""The service itself: its identity, database, logs, operations, alerts and languages."""

from __future__ import annotations

import zoneinfo
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from bot.config.base import SettingsGroup, comma_list
from bot.i18n import available_locales, normalize


class BotSettings(SettingsGroup):
    system_prompt: str = Field(
        "You are Parley, a helpful assistant in a team chat. Answer concisely. "
        "Use the tools you are given when they help; never invent tool results.",
        validation_alias="PARLEY_SYSTEM_PROMPT",
    )
    max_tool_rounds: int = Field(5, ge=1, le=50, validation_alias="PARLEY_MAX_TOOL_ROUNDS")
    context_tokens: int = Field(12000, ge=500, validation_alias="PARLEY_CONTEXT_TOKENS")
    tool_timeout_seconds: float = Field(30.0, gt=0, validation_alias="PARLEY_TOOL_TIMEOUT")
    # Calls past this many in one model answer are refused (the model reads why), not run.
    max_tool_calls_per_round: int = Field(
        8, ge=1, le=128, validation_alias="PARLEY_MAX_TOOL_CALLS_PER_ROUND"
    )
    # A call whose arguments are longer is refused as invalid and stored shortened.
    max_tool_argument_chars: int = Field(
        65_536, ge=1024, validation_alias="PARLEY_MAX_TOOL_ARGUMENT_CHARS"
    )
    default_timezone: str = Field("UTC", validation_alias="PARLEY_DEFAULT_TIMEZONE")
    # A reply complete within this time is sent whole: no streamed preview, typing action
    # or status first (each would be a platform call replaced a moment later).
    preview_delay_seconds: float = Field(0.3, ge=0, le=10, validation_alias="PARLEY_PREVIEW_DELAY")
    # How long a Confirm / Cancel question waits for its asker, on every platform (the
    # Telegram-only name it had before is still read).
    confirm_timeout_seconds: float = Field(
        300.0,
        gt=0,
        validation_alias=AliasChoices("PARLEY_CONFIRM_TIMEOUT", "PARLEY_TELEGRAM_CONFIRM_TIMEOUT"),
    )

    # -- memory (summaries of long conversations; facts users asked to remember) --------
    # When history outgrows PARLEY_CONTEXT_TOKENS, its older half is summarised by the
    # model (one extra call, after the turn) and the summary is offered ahead of the rest.
    summaries: bool = Field(True, validation_alias="PARLEY_SUMMARIES")
    memory_max_facts: int = Field(50, ge=1, le=1000, validation_alias="PARLEY_MEMORY_MAX_FACTS")
    memory_fact_max_chars: int = Field(
        300, ge=20, le=2000, validation_alias="PARLEY_MEMORY_FACT_MAX_CHARS"
    )
    # Observed group context (Telegram groups; docs/memory.md): keep the last N messages
    # not addressed to Parley per group (0: off, nothing is kept) for at most this many
    # hours, and show them, attributed, to the next turn addressed to it there.
    group_context_messages: int = Field(
        0, ge=0, le=200, validation_alias="PARLEY_GROUP_CONTEXT_MESSAGES"
    )
    group_context_hours: float = Field(
        24.0, gt=0, le=24 * 30, validation_alias="PARLEY_GROUP_CONTEXT_HOURS"
    )
    # More enabled tools than this: the built-in ones and the MCP tools most relevant to
    # the message are offered (bot/turn/tool_choice.py).
    max_offered_tools: int = Field(40, ge=1, le=512, validation_alias="PARLEY_MAX_OFFERED_TOOLS")

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name like Europe/Berlin)"
            ) from exc
        return value


class DatabaseSettings(SettingsGroup):
    url: str = Field("sqlite:///data/parley.db", validation_alias="DATABASE_URL")
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, validation_alias="PARLEY_SQLITE_BUSY_TIMEOUT_MS"
    )
    echo: bool = Field(False, validation_alias="PARLEY_DATABASE_ECHO")


class LogSettings(SettingsGroup):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=AliasChoices("PARLEY_LOG_LEVEL")
    )
    format: Literal["text", "json"] = Field("text", validation_alias="PARLEY_LOG_FORMAT")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class OpsSettings(SettingsGroup):
    """Running in production: shutdown, the scheduler leader lease, logging bodies,
    who may see /readyz's details."""

    shutdown_grace_seconds: float = Field(
        30.0, ge=0, validation_alias="PARLEY_SHUTDOWN_GRACE_SECONDS"
    )
    lease_seconds: float = Field(15.0, gt=0, validation_alias="PARLEY_SCHEDULER_LEASE_SECONDS")
    lease_renew_seconds: float = Field(
        5.0, gt=0, validation_alias="PARLEY_SCHEDULER_LEASE_RENEW_SECONDS"
    )
    log_bodies: bool = Field(False, validation_alias="PARLEY_LOG_BODIES")
    # Claimed event ids are forgotten after this long (by the scheduler leader, hourly).
    # Telegram re-delivers for up to 24 hours and Slack for minutes: keep it above a day.
    event_retention_hours: float = Field(
        72.0, ge=24, validation_alias="PARLEY_EVENT_RETENTION_HOURS"
    )
    # Lets a remote monitor see /readyz's details (callers on this host always do).
    readyz_token: SecretStr | None = Field(None, validation_alias="PARLEY_READYZ_TOKEN")
    # Days of per-turn records the console's overview keeps (turn_log).
    activity_keep_days: int = Field(90, ge=1, validation_alias="PARLEY_ACTIVITY_KEEP_DAYS")


class AlertSettings(SettingsGroup):
    """Who is told when the model keeps failing, a platform stays unreachable or reminders
    fail, and when that counts as "keeps"."""

    to: str = Field("", validation_alias="PARLEY_ALERT_TO")
    model_failures: int = Field(5, ge=1, validation_alias="PARLEY_ALERT_MODEL_FAILURES")
    reminder_failures: int = Field(3, ge=1, validation_alias="PARLEY_ALERT_REMINDER_FAILURES")
    window_minutes: float = Field(10.0, gt=0, validation_alias="PARLEY_ALERT_WINDOW_MINUTES")
    disconnected_seconds: float = Field(
        120.0, ge=0, validation_alias="PARLEY_ALERT_DISCONNECTED_SECONDS"
    )
    check_seconds: float = Field(60.0, gt=0, validation_alias="PARLEY_ALERT_CHECK_SECONDS")
    repeat_minutes: float = Field(60.0, ge=0, validation_alias="PARLEY_ALERT_REPEAT_MINUTES")

    @field_validator("to")
    @classmethod
    def _targets(cls, value: str) -> str:
        for item in comma_list(value):
            kind, _, target = item.partition(":")
            if not kind or not target:
                raise ValueError(
                    f"{item!r} is not a target (write e.g. slack:U123,telegram:42,"
                    "email:ops@example.com)"
                )
        return value

    @property
    def targets(self) -> list[tuple[str, str]]:
        """(platform or "email", id or address) of everyone to tell."""
        return [
            (kind.strip(), target.strip())
            for kind, _, target in (item.partition(":") for item in comma_list(self.to))
        ]


class LanguageSettings(SettingsGroup):
    """The language Parley writes in (bot/chat/languages.py): a user's choice, their chat app's
    language, then this default."""

    # For users who chose none and whose app reports none Parley has a catalog for.
    default: str = Field("en", validation_alias="PARLEY_LANGUAGE")
    # How long a user's language (their choice, their app's tag, the Slack locale) is
    # remembered before it is read again.
    cache_seconds: float = Field(600.0, ge=0, validation_alias="PARLEY_LANGUAGE_CACHE_SECONDS")

    @field_validator("default")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if normalize(value) not in available_locales():
            raise ValueError(f"no catalog for {value!r} (one of: {', '.join(available_locales())})")
        return value
