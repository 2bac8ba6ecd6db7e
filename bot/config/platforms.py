"""The doors: the HTTP server, Slack and Telegram."""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, SecretStr, field_validator

from bot.config.base import SettingsGroup, comma_list


class HTTPSettings(SettingsGroup):
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
        for item in comma_list(value):
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
            ipaddress.ip_network(item, strict=False) for item in comma_list(self.trusted_proxies)
        ]


class SlackSettings(SettingsGroup):
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


class TelegramSettings(SettingsGroup):
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
