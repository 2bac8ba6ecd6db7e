"""`Settings`: every group, read at once; an invalid value is one `ConfigError` line that
names the variable, so the CLI never shows a pydantic traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, SecretStr, ValidationError

from bot.config.admin import AdminSettings, ApprovalSettings, LimitSettings
from bot.config.base import SettingsGroup
from bot.config.model import LLMSettings, MediaSettings, TurnSettings
from bot.config.paths import anchor_paths
from bot.config.platforms import HTTPSettings, SlackSettings, TelegramSettings
from bot.config.service import (
    AlertSettings,
    BotSettings,
    DatabaseSettings,
    LanguageSettings,
    LogSettings,
    OpsSettings,
)
from bot.config.tooling import EmailSettings, MCPSettings, ReminderSettings, WeatherSettings
from bot.errors import ConfigError


class Settings:
    """All of Parley's settings, one group per concern.

    A feature adds its group by subclassing `SettingsGroup` and naming it in `GROUPS`; the
    group is then an attribute of the same name (`settings.llm`, `settings.database`).
    """

    GROUPS: ClassVar[dict[str, type[SettingsGroup]]] = {
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

    def __init__(self, **groups: SettingsGroup) -> None:
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
        if env_file is not None and Path(env_file).is_file():
            anchor_paths(groups, Path(env_file), os.environ)
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


def describe_validation_error(group_cls: type[SettingsGroup], exc: ValidationError) -> str:
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


def _is_secret(group_cls: type[SettingsGroup], field_name: str) -> bool:
    """Whether a field holds a secret (its value must never appear in an error)."""
    field = group_cls.model_fields.get(field_name)
    if field is None:
        return True
    annotation = field.annotation
    return SecretStr in (annotation, *getattr(annotation, "__args__", ()))
