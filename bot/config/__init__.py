"""Typed settings, read from environment variables and `.env`.

The variable names are a public interface (users keep them in `.env`), so every field
declares its name explicitly with `validation_alias`. Settings are grouped by concern,
one module per family of groups: the model (model.py), the doors (platforms.py), the
service itself (service.py), administration (admin.py), the tools (tooling.py), on the
shared reading rules of base.py; `Settings` (settings.py) holds them all. names.py finds
the names that look like settings but are not, and those set twice in `.env`; paths.py
makes the relative paths of a `.env` file relative to its folder.
"""

from bot.config.admin import AdminSettings, ApprovalSettings, LimitSettings
from bot.config.base import SettingsGroup
from bot.config.model import LLMSettings, MediaSettings, ProfileName, TurnSettings
from bot.config.names import misnamed_settings
from bot.config.platforms import HTTPSettings, SlackSettings, TelegramSettings
from bot.config.service import (
    AlertSettings,
    BotSettings,
    DatabaseSettings,
    LanguageSettings,
    LogSettings,
    OpsSettings,
)
from bot.config.settings import Settings, describe_validation_error
from bot.config.tooling import EmailSettings, MCPSettings, ReminderSettings, WeatherSettings

__all__ = [
    "AdminSettings",
    "AlertSettings",
    "ApprovalSettings",
    "BotSettings",
    "DatabaseSettings",
    "EmailSettings",
    "HTTPSettings",
    "LLMSettings",
    "LanguageSettings",
    "LimitSettings",
    "LogSettings",
    "MCPSettings",
    "MediaSettings",
    "OpsSettings",
    "ProfileName",
    "ReminderSettings",
    "Settings",
    "SettingsGroup",
    "SlackSettings",
    "TelegramSettings",
    "TurnSettings",
    "WeatherSettings",
    "describe_validation_error",
    "misnamed_settings",
]
