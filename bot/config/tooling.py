"""The built-in tools' settings: MCP servers, weather, email and reminders."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from bot.config.base import SettingsGroup


class MCPSettings(SettingsGroup):
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


class WeatherSettings(SettingsGroup):
    geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1/search",
        validation_alias="PARLEY_WEATHER_GEOCODING_URL",
    )
    forecast_url: str = Field(
        "https://api.open-meteo.com/v1/forecast", validation_alias="PARLEY_WEATHER_FORECAST_URL"
    )
    timeout_seconds: float = Field(10.0, gt=0, validation_alias="PARLEY_WEATHER_TIMEOUT")
    cache_seconds: int = Field(600, ge=0, validation_alias="PARLEY_WEATHER_CACHE_SECONDS")


class EmailSettings(SettingsGroup):
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


class ReminderSettings(SettingsGroup):
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
