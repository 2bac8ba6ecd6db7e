"""Who administers Parley, and what they bound: limits and approvals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from bot.config.base import SettingsGroup, comma_list


class AdminSettings(SettingsGroup):
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
        for item in comma_list(value):
            platform, _, user = item.partition(":")
            if not platform or not user:
                raise ValueError(
                    f"{item!r} is not platform-qualified (write e.g. slack:U123,telegram:42)"
                )
        return value

    @property
    def admin_ids(self) -> frozenset[str]:
        """`platform:user_id` of every admin named in settings."""
        return frozenset(comma_list(self.admins))

    @property
    def console_enabled(self) -> bool:
        return self.console_password is not None and bool(self.console_password.get_secret_value())


class LimitSettings(SettingsGroup):
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


# -- approvals (bot/approvals/gate.py) ----------------------------------------------------------


class ApprovalSettings(SettingsGroup):
    """How approval questions wait (their expiry is PARLEY_CONFIRM_TIMEOUT)."""

    # The asking replica reads its open question's row this often (a press may land on
    # any replica; one it receives itself wakes it at once).
    poll_seconds: float = Field(0.5, gt=0, le=10, validation_alias="PARLEY_APPROVAL_POLL_SECONDS")
    # Telegram: send approval questions in groups as ephemeral messages (Bot API 10.3)
    # when the server supports them; off: always in-chat buttons only the asker can press.
    telegram_ephemeral: bool = Field(True, validation_alias="PARLEY_TELEGRAM_EPHEMERAL_APPROVALS")
