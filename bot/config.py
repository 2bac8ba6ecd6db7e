"""Typed settings, read from environment variables and `.env`.

The variable names are a public interface (users keep them in `.env`), so every field
declares its name explicitly with `validation_alias`. Settings are grouped by concern;
`Settings.load()` turns any invalid value into one `ConfigError` line that names the
variable, so the CLI never shows a pydantic traceback.
"""

from __future__ import annotations

import ipaddress
import json
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.i18n import available_locales, normalize

ProfileName = Literal[
    "auto", "generic", "openai", "dashscope", "deepseek", "vllm", "ollama", "gemini", "ernie",
    "kimi", "glm", "minimax", "openrouter", "mistral", "ark", "siliconflow",
]  # fmt: skip


class _Group(BaseSettings):
    """Shared reading rules: env vars first, then `.env`, unknown names ignored."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False
    )


class LLMSettings(_Group):
    # A TOML file of named providers (docs/providers.md); None: the settings below.
    # (Declared first: the two after it are checked against it.)
    providers_file: Path | None = Field(None, validation_alias="PARLEY_PROVIDERS_FILE")
    # openai or anthropic; with PARLEY_PROVIDERS_FILE, the name of one of its tables.
    provider: str = Field("openai", min_length=1, max_length=64, validation_alias="PARLEY_PROVIDER")
    # Providers of that file tried in order when the current one fails after its retries.
    fallback: str = Field("", max_length=1000, validation_alias="PARLEY_FALLBACK")
    # Seconds a provider that failed is passed over before it leads a call again.
    failover_cooldown_seconds: float = Field(
        60.0, ge=0, le=3600, validation_alias="PARLEY_FAILOVER_COOLDOWN"
    )
    api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    base_url: str = Field("https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        "https://api.anthropic.com", validation_alias="PARLEY_ANTHROPIC_BASE_URL"
    )
    profile: ProfileName = Field("auto", validation_alias="PARLEY_LLM_PROFILE")
    tool_choice: Literal["", "auto", "none", "required"] = Field(
        "", validation_alias="PARLEY_LLM_TOOL_CHOICE"
    )
    model: str = Field("gpt-4o-mini", validation_alias="PARLEY_MODEL")
    stream: bool = Field(True, validation_alias="PARLEY_LLM_STREAM")
    stream_usage: bool = Field(True, validation_alias="PARLEY_LLM_STREAM_USAGE")
    timeout_seconds: float = Field(60.0, gt=0, validation_alias="PARLEY_LLM_TIMEOUT")
    connect_timeout_seconds: float = Field(5.0, gt=0, validation_alias="PARLEY_LLM_CONNECT_TIMEOUT")
    max_retries: int = Field(2, ge=0, le=10, validation_alias="PARLEY_LLM_MAX_RETRIES")
    temperature: float | None = Field(None, ge=0, le=2, validation_alias="PARLEY_LLM_TEMPERATURE")
    max_tokens: int | None = Field(None, gt=0, validation_alias="PARLEY_LLM_MAX_TOKENS")
    parallel_tool_calls: bool | None = Field(
        None, validation_alias="PARLEY_LLM_PARALLEL_TOOL_CALLS"
    )
    strict_tools: bool = Field(False, validation_alias="PARLEY_LLM_STRICT_TOOLS")
    # Thinking (reasoning) mode, mapped per vendor by its provider: "auto" leaves the
    # vendor's default, "on" asks for it, "off" turns it off where the vendor can.
    thinking: Literal["auto", "on", "off"] = Field("auto", validation_alias="PARLEY_LLM_THINKING")
    # Reasoning tokens allowed per call where the vendor takes a budget (None: its default).
    thinking_budget: int | None = Field(None, ge=1, validation_alias="PARLEY_LLM_THINKING_BUDGET")
    extra_body: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict, validation_alias="PARLEY_LLM_EXTRA_BODY"
    )
    # Baidu Qianfan: the application id sent as the `appid` header (None: not sent).
    qianfan_appid: str | None = Field(None, validation_alias="PARLEY_QIANFAN_APPID")

    @field_validator("extra_body", mode="before")
    @classmethod
    def _parse_extra_body(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not valid JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise ValueError('must be a JSON object, e.g. {"enable_thinking": false}')
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback_needs_file(cls, value: str, info: ValidationInfo) -> str:
        if value.strip() and info.data.get("providers_file") is None:
            raise ValueError("names providers of PARLEY_PROVIDERS_FILE, which is not set")
        return value

    @property
    def fallback_names(self) -> list[str]:
        """PARLEY_FALLBACK as a list, in order."""
        return [name.strip() for name in self.fallback.split(",") if name.strip()]

    @field_validator("provider")
    @classmethod
    def _provider_known(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("providers_file") is None and value not in ("openai", "anthropic"):
            raise ValueError(
                f"{value!r} must be openai or anthropic without PARLEY_PROVIDERS_FILE "
                "(which names the other providers)"
            )
        return value


class BotSettings(_Group):
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
    # More enabled tools than this: the built-in ones and the MCP tools most relevant to
    # the message are offered (bot/tool_choice.py).
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


class DatabaseSettings(_Group):
    url: str = Field("sqlite:///data/parley.db", validation_alias="DATABASE_URL")
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, validation_alias="PARLEY_SQLITE_BUSY_TIMEOUT_MS"
    )
    echo: bool = Field(False, validation_alias="PARLEY_DATABASE_ECHO")


class HTTPSettings(_Group):
    """The web server: where it listens, whom it believes, how much it reads."""

    host: str = Field("127.0.0.1", validation_alias="PARLEY_HTTP_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="PARLEY_HTTP_PORT")
    # The address people and platforms reach Parley at; an https:// one makes the
    # console's cookie Secure (PARLEY_CONSOLE_SECURE_COOKIE=auto).
    public_url: str = Field("", validation_alias="PARLEY_PUBLIC_URL")
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDR
    # networks). Empty: nobody's, the peer address is the client.
    trusted_proxies: str = Field("", validation_alias="PARLEY_HTTP_TRUSTED_PROXIES")
    # Request bodies larger than these are refused with 413 before they are read.
    slack_events_max_bytes: int = Field(
        1_048_576, ge=1024, validation_alias="PARLEY_HTTP_SLACK_EVENTS_MAX_BYTES"
    )
    slack_forms_max_bytes: int = Field(
        1_048_576, ge=1024, validation_alias="PARLEY_HTTP_SLACK_FORMS_MAX_BYTES"
    )
    telegram_max_bytes: int = Field(
        1_048_576, ge=1024, validation_alias="PARLEY_HTTP_TELEGRAM_MAX_BYTES"
    )
    console_max_bytes: int = Field(
        262_144, ge=1024, validation_alias="PARLEY_HTTP_CONSOLE_MAX_BYTES"
    )
    max_bytes: int = Field(65_536, ge=0, validation_alias="PARLEY_HTTP_MAX_BYTES")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in _comma_list(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network (write e.g. 10.0.0.0/8,127.0.0.1)"
                ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://)")
        return value

    @property
    def trusted_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(item, strict=False) for item in _comma_list(self.trusted_proxies)
        ]


class SlackSettings(_Group):
    """Slack: a bot token enables it; an app-level token selects Socket Mode."""

    bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    api_url: str = Field("https://slack.com/api/", validation_alias="PARLEY_SLACK_API_URL")
    command: str = Field("/parley", validation_alias="PARLEY_SLACK_COMMAND")
    # A streamed answer is appended (chat.appendStream) at most this often, and where
    # streaming is unavailable, edited (chat.update, rate-limited per channel) at most
    # every `update_interval_seconds`.
    stream_interval_seconds: float = Field(
        0.5, gt=0, le=60, validation_alias="PARLEY_SLACK_STREAM_INTERVAL"
    )
    update_interval_seconds: float = Field(
        1.0, gt=0, le=60, validation_alias="PARLEY_SLACK_UPDATE_INTERVAL"
    )
    # Slack's agent features: session status and title, tool calls as stream tasks,
    # feedback buttons under answers.
    agent_sessions: bool = Field(True, validation_alias="PARLEY_SLACK_AGENT_SESSIONS")

    @field_validator("command")
    @classmethod
    def _slash(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("/") or len(value) < 2 or " " in value:
            raise ValueError("must be a slash command name such as /parley")
        return value

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())


class TelegramSettings(_Group):
    bot_token: SecretStr | None = Field(None, validation_alias="TELEGRAM_BOT_TOKEN")
    base_url: str = Field(
        "https://api.telegram.org/bot", validation_alias="PARLEY_TELEGRAM_BASE_URL"
    )
    webhook_url: str | None = Field(None, validation_alias="PARLEY_TELEGRAM_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(
        None, validation_alias="PARLEY_TELEGRAM_WEBHOOK_SECRET"
    )
    edit_interval_seconds: float = Field(
        1.0, ge=1.0, le=60, validation_alias="PARLEY_TELEGRAM_EDIT_INTERVAL"
    )
    draft_interval_seconds: float = Field(
        0.5, ge=0.1, le=60, validation_alias="PARLEY_TELEGRAM_DRAFT_INTERVAL"
    )
    max_retries: int = Field(5, ge=0, le=20, validation_alias="PARLEY_TELEGRAM_MAX_RETRIES")
    # Final answers as rich messages (Bot API 10.1) while the server takes them.
    rich_messages: bool = Field(True, validation_alias="PARLEY_TELEGRAM_RICH_MESSAGES")

    @field_validator("webhook_url", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_charset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if not 1 <= len(secret) <= 256 or not all(c.isalnum() or c in "_-" for c in secret):
                raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value


class LogSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=AliasChoices("PARLEY_LOG_LEVEL")
    )
    format: Literal["text", "json"] = Field("text", validation_alias="PARLEY_LOG_FORMAT")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class MCPSettings(_Group):
    config: str = Field("", validation_alias="PARLEY_MCP_CONFIG")
    start_timeout_seconds: float = Field(10.0, gt=0, validation_alias="PARLEY_MCP_START_TIMEOUT")
    restart_backoff_seconds: float = Field(1.0, gt=0, validation_alias="PARLEY_MCP_RESTART_BACKOFF")
    question_timeout_seconds: float = Field(
        300.0, gt=0, validation_alias="PARLEY_MCP_QUESTION_TIMEOUT"
    )
    # After a call times out, the server must answer a ping within this, or it is restarted.
    probe_timeout_seconds: float = Field(5.0, gt=0, validation_alias="PARLEY_MCP_PROBE_TIMEOUT")
    # A call that reports progress has its timeout restarted by each report, up to this.
    call_hard_timeout_seconds: float = Field(
        600.0, gt=0, validation_alias="PARLEY_MCP_CALL_HARD_TIMEOUT"
    )


class AdminSettings(_Group):
    """Who administers Parley, the tools a channel gets by default, and the web console."""

    admins: str = Field("", validation_alias="PARLEY_ADMINS")
    default_tools_dm: str = Field("all", validation_alias="PARLEY_DEFAULT_TOOLS_DM")
    default_tools_group: str = Field("all", validation_alias="PARLEY_DEFAULT_TOOLS_GROUP")
    admin_cache_seconds: float = Field(60.0, ge=0, validation_alias="PARLEY_ADMIN_CACHE_SECONDS")
    console_password: SecretStr | None = Field(None, validation_alias="PARLEY_ADMIN_PASSWORD")
    console_show_content: bool = Field(True, validation_alias="PARLEY_CONSOLE_SHOW_CONTENT")
    # A console session ends after this many idle hours, and at the latest after
    # console_session_max_hours from sign-in, whatever its use.
    console_session_hours: float = Field(2.0, gt=0, validation_alias="PARLEY_CONSOLE_SESSION_HOURS")
    console_session_max_hours: float = Field(
        12.0, gt=0, validation_alias="PARLEY_CONSOLE_SESSION_MAX_HOURS"
    )
    # auto: Secure when PARLEY_PUBLIC_URL is https or the request arrived over https.
    console_secure_cookie: Literal["auto", "true", "false"] = Field(
        "auto", validation_alias="PARLEY_CONSOLE_SECURE_COOKIE"
    )
    # Wrong passwords are slowed, never locked out: the wait doubles from this many
    # seconds, up to the maximum (docs/security.md).
    console_signin_delay_seconds: float = Field(
        1.0, ge=0, le=60, validation_alias="PARLEY_CONSOLE_SIGNIN_DELAY"
    )
    console_signin_max_delay_seconds: float = Field(
        30.0, ge=0, le=3600, validation_alias="PARLEY_CONSOLE_SIGNIN_MAX_DELAY"
    )
    console_signin_tracked: int = Field(
        10_000, ge=1, le=1_000_000, validation_alias="PARLEY_CONSOLE_SIGNIN_TRACKED"
    )

    @field_validator("console_secure_cookie", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admins")
    @classmethod
    def _qualified(cls, value: str) -> str:
        for item in _comma_list(value):
            platform, _, user = item.partition(":")
            if not platform or not user:
                raise ValueError(
                    f"{item!r} is not platform-qualified (write e.g. slack:U123,telegram:42)"
                )
        return value

    @property
    def admin_ids(self) -> frozenset[str]:
        """`platform:user_id` of every admin named in settings."""
        return frozenset(_comma_list(self.admins))

    @property
    def console_enabled(self) -> bool:
        return self.console_password is not None and bool(self.console_password.get_secret_value())


class LimitSettings(_Group):
    """Token budgets and a message rate limit; 0 means no limit. Channels may override."""

    user_daily_tokens: int = Field(0, ge=0, validation_alias="PARLEY_USER_DAILY_TOKENS")
    user_monthly_tokens: int = Field(0, ge=0, validation_alias="PARLEY_USER_MONTHLY_TOKENS")
    channel_daily_tokens: int = Field(0, ge=0, validation_alias="PARLEY_CHANNEL_DAILY_TOKENS")
    channel_monthly_tokens: int = Field(0, ge=0, validation_alias="PARLEY_CHANNEL_MONTHLY_TOKENS")
    user_messages_per_minute: int = Field(
        0, ge=0, validation_alias="PARLEY_USER_MESSAGES_PER_MINUTE"
    )
    # -- reservations across concurrent turns and replicas (issue 15) -----------------
    # Turns one user may have running at once, over all chats (0: no cap); global only.
    user_turns_in_flight: int = Field(0, ge=0, validation_alias="PARLEY_USER_TURNS_IN_FLIGHT")
    # The least a turn reserves against the budgets before the model is called (the
    # user's last model call counts instead when it was bigger).
    turn_token_estimate: int = Field(2000, ge=1, validation_alias="PARLEY_TURN_TOKEN_ESTIMATE")
    # A reservation a crashed process never settled stops counting after this long; at
    # least the rate limit's minute.
    reservation_seconds: int = Field(
        900, ge=60, le=86_400, validation_alias="PARLEY_BUDGET_RESERVATION_SECONDS"
    )


def _comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class WeatherSettings(_Group):
    geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1/search",
        validation_alias="PARLEY_WEATHER_GEOCODING_URL",
    )
    forecast_url: str = Field(
        "https://api.open-meteo.com/v1/forecast", validation_alias="PARLEY_WEATHER_FORECAST_URL"
    )
    timeout_seconds: float = Field(10.0, gt=0, validation_alias="PARLEY_WEATHER_TIMEOUT")
    cache_seconds: int = Field(600, ge=0, validation_alias="PARLEY_WEATHER_CACHE_SECONDS")


class EmailSettings(_Group):
    host: str = Field("", validation_alias="SMTP_HOST")
    port: int | None = Field(None, ge=1, le=65535, validation_alias="SMTP_PORT")
    username: str = Field("", validation_alias="SMTP_USERNAME")
    password: SecretStr | None = Field(None, validation_alias="SMTP_PASSWORD")
    sender: str = Field("", validation_alias="SMTP_FROM")
    tls: Literal["starttls", "tls", "none"] = Field("starttls", validation_alias="SMTP_TLS")
    # A private certificate authority's PEM file, trusted beside the system's store.
    ca_file: Path | None = Field(None, validation_alias="PARLEY_SMTP_CA_FILE")
    timeout_seconds: float = Field(20.0, gt=0, validation_alias="PARLEY_EMAIL_TIMEOUT")
    allowlist: str = Field("", validation_alias="PARLEY_EMAIL_ALLOWLIST")

    @property
    def allowed_recipients(self) -> list[str]:
        """`PARLEY_EMAIL_ALLOWLIST` split on commas: addresses, or `@domain` entries."""
        return [item.strip().lower() for item in self.allowlist.split(",") if item.strip()]


class AlertSettings(_Group):
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
        for item in _comma_list(value):
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
            for kind, _, target in (item.partition(":") for item in _comma_list(self.to))
        ]


class ReminderSettings(_Group):
    retry_seconds: float = Field(30.0, gt=0, validation_alias="PARLEY_REMINDER_RETRY_SECONDS")
    max_attempts: int = Field(5, ge=1, le=50, validation_alias="PARLEY_REMINDER_MAX_ATTEMPTS")
    late_after_seconds: float = Field(
        60.0, ge=0, validation_alias="PARLEY_REMINDER_LATE_AFTER_SECONDS"
    )
    # Pending reminders and follow-ups one user may have at once.
    max_pending_per_user: int = Field(
        50, ge=1, validation_alias="PARLEY_REMINDER_MAX_PENDING_PER_USER"
    )
    # A repeating follow-up runs a model turn each time: it may not repeat more often
    # than this (0: no minimum). Repeating message reminders are not limited.
    min_follow_up_interval_seconds: float = Field(
        3600.0, ge=0, validation_alias="PARLEY_REMINDER_MIN_FOLLOW_UP_INTERVAL_SECONDS"
    )
    # At shutdown, how long sends in flight may finish before they are cancelled (a
    # cancelled one stays pending and goes out again at the next start).
    stop_grace_seconds: float = Field(
        5.0, ge=0, validation_alias="PARLEY_REMINDER_STOP_GRACE_SECONDS"
    )


class OpsSettings(_Group):
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


# -- approvals (bot/approvals.py) ----------------------------------------------------------


class ApprovalSettings(_Group):
    """How approval questions wait (their expiry is PARLEY_CONFIRM_TIMEOUT)."""

    # The asking replica reads its open question's row this often (a press may land on
    # any replica; one it receives itself wakes it at once).
    poll_seconds: float = Field(0.5, gt=0, le=10, validation_alias="PARLEY_APPROVAL_POLL_SECONDS")
    # Telegram: send approval questions in groups as ephemeral messages (Bot API 10.3)
    # when the server supports them; off: always in-chat buttons only the asker can press.
    telegram_ephemeral: bool = Field(True, validation_alias="PARLEY_TELEGRAM_EPHEMERAL_APPROVALS")


# -- Voice notes and pictures (docs/media.md) -------------------------------------------


class MediaSettings(_Group):
    """Voice notes (transcribed through an OpenAI-compatible /audio/transcriptions
    endpoint of their own: off while PARLEY_TRANSCRIPTION_MODEL is unset) and pictures
    (sent to the model as image parts where it is marked vision-capable), with their
    limits. Limits are checked on what the platform declares before a download and on
    the bytes after it."""

    transcription_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias="PARLEY_TRANSCRIPTION_BASE_URL"
    )
    transcription_api_key: SecretStr | None = Field(
        None, validation_alias="PARLEY_TRANSCRIPTION_API_KEY"
    )
    transcription_model: str = Field("", validation_alias="PARLEY_TRANSCRIPTION_MODEL")
    transcription_timeout_seconds: float = Field(
        60.0, gt=0, validation_alias="PARLEY_TRANSCRIPTION_TIMEOUT"
    )
    # OpenAI takes at most 25 MB per transcription; Telegram lets bots download 20 MB.
    max_audio_bytes: int = Field(
        10 * 1024 * 1024, ge=1, le=25 * 1024 * 1024, validation_alias="PARLEY_MEDIA_MAX_AUDIO_BYTES"
    )
    max_audio_seconds: int = Field(300, ge=1, validation_alias="PARLEY_MEDIA_MAX_AUDIO_SECONDS")
    vision: bool = Field(False, validation_alias="PARLEY_LLM_VISION")
    # Anthropic refuses an image over 5 MB of base64, which is 3.75 MiB of bytes; OpenAI
    # takes up to 20 MB.
    max_image_bytes: int = Field(
        3_932_160, ge=1, le=20 * 1024 * 1024, validation_alias="PARLEY_MEDIA_MAX_IMAGE_BYTES"
    )
    max_images: int = Field(4, ge=1, le=20, validation_alias="PARLEY_MEDIA_MAX_IMAGES")

    @property
    def transcription_enabled(self) -> bool:
        return bool(self.transcription_model and self.transcription_base_url)


# -- durable turns (issue 15) ----------------------------------------------------------


class TurnSettings(_Group):
    """Durable turns (bot/turns.py): how long a turn cut short by a dead process is run
    again rather than reported lost, and the lease each process keeps while it runs turns."""

    # A turn older than this when its process is found dead gets a "please ask again"
    # notice instead of an answer (0: never resume, always tell).
    resume_window_minutes: float = Field(
        10.0, ge=0, validation_alias="PARLEY_TURN_RESUME_WINDOW_MINUTES"
    )
    # A process that stops renewing its lease for this long is taken for dead: the
    # scheduler leader then resumes its open turns.
    lease_seconds: float = Field(15.0, gt=0, validation_alias="PARLEY_TURN_LEASE_SECONDS")
    lease_renew_seconds: float = Field(
        5.0, gt=0, validation_alias="PARLEY_TURN_LEASE_RENEW_SECONDS"
    )


class LanguageSettings(_Group):
    """The language Parley writes in (bot/languages.py): a user's choice, their chat app's
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


class Settings:
    """All of Parley's settings, one group per concern.

    A feature adds its group by subclassing `_Group` and naming it in `GROUPS`; the
    group is then an attribute of the same name (`settings.llm`, `settings.database`).
    """

    GROUPS: ClassVar[dict[str, type[_Group]]] = {
        "llm": LLMSettings,
        "bot": BotSettings,
        "database": DatabaseSettings,
        "http": HTTPSettings,
        "slack": SlackSettings,
        "log": LogSettings,
        "mcp": MCPSettings,
        "admin": AdminSettings,
        "limits": LimitSettings,
        "weather": WeatherSettings,
        "email": EmailSettings,
        "reminders": ReminderSettings,
        "telegram": TelegramSettings,
        "ops": OpsSettings,
        "alerts": AlertSettings,
        "approvals": ApprovalSettings,
        "media": MediaSettings,
        "turns": TurnSettings,
        "language": LanguageSettings,
    }

    llm: LLMSettings
    bot: BotSettings
    database: DatabaseSettings
    http: HTTPSettings
    slack: SlackSettings
    log: LogSettings
    mcp: MCPSettings
    admin: AdminSettings
    limits: LimitSettings

    weather: WeatherSettings
    email: EmailSettings
    reminders: ReminderSettings
    telegram: TelegramSettings
    ops: OpsSettings
    alerts: AlertSettings
    approvals: ApprovalSettings
    media: MediaSettings
    turns: TurnSettings
    language: LanguageSettings

    def __init__(self, **groups: _Group) -> None:
        for name, group_cls in self.GROUPS.items():
            group = groups.pop(name, None)
            setattr(self, name, group if group is not None else group_cls())
        if groups:
            raise TypeError(f"unknown settings groups: {', '.join(groups)}")

    @classmethod
    def load(cls, env_file: str | Path | None = ".env", **overrides: dict[str, Any]) -> Settings:
        """Read every group; `overrides` maps a group name to field values (for tests)."""
        groups: dict[str, Any] = {}
        for name, group_cls in cls.GROUPS.items():
            # Overrides name fields; pydantic-settings takes them by their variable names.
            values = {
                _env_name(group_cls.model_fields[field]): value
                for field, value in overrides.get(name, {}).items()
            }
            try:
                groups[name] = group_cls(_env_file=env_file, **values)
            except ValidationError as exc:
                raise ConfigError(describe_validation_error(group_cls, exc)) from None
        return cls(**groups)

    def secrets(self) -> dict[str, str]:
        """Every secret that is set (each `SecretStr` field, the database password), as
        {value: variable name}: what the logs must never show."""
        found: dict[str, str] = {}
        for name, group_cls in self.GROUPS.items():
            group = getattr(self, name)
            for field_name, field in group_cls.model_fields.items():
                value = getattr(group, field_name)
                if isinstance(value, SecretStr) and value.get_secret_value():
                    found[value.get_secret_value()] = _env_name(field)
        # A PostgreSQL URL carries its password (as written, and decoded).
        password = urlsplit(self.database.url).password
        if password:
            found[password] = found[unquote(password)] = "DATABASE_URL password"
        return found

    @classmethod
    def env_names(cls) -> list[str]:
        """Every environment variable Parley reads, in declaration order."""
        names: list[str] = []
        for group_cls in cls.GROUPS.values():
            names.extend(_env_name(field) for field in group_cls.model_fields.values())
        return names


def _env_name(field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias)


def describe_validation_error(group_cls: type[_Group], exc: ValidationError) -> str:
    """One line per invalid variable: `NAME: what is wrong (got 'value')`."""
    by_alias = {_env_name(field): name for name, field in group_cls.model_fields.items()}
    lines = []
    for error in exc.errors():
        loc = str(error["loc"][0]) if error["loc"] else ""
        env_name = (
            loc
            if loc in by_alias
            else next((alias for alias, name in by_alias.items() if name == loc), loc)
        )
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = (
            ""
            if isinstance(value, dict) or _is_secret(group_cls, by_alias.get(env_name, loc))
            else f" (got {value!r})"
        )
        lines.append(f"{env_name}: {message}{shown}" if env_name else message)
    return "; ".join(lines)


def _is_secret(group_cls: type[_Group], field_name: str) -> bool:
    """Whether a field holds a secret (its value must never appear in an error)."""
    field = group_cls.model_fields.get(field_name)
    if field is None:
        return True
    annotation = field.annotation
    return SecretStr in (annotation, *getattr(annotation, "__args__", ()))
