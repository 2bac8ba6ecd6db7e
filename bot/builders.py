"""The parts `Application` is assembled from that depend on which settings are set, each
built from `Settings` alone: the model provider (one, or a providers file's chain), the
voice-note transcriber, the MCP servers' tools, each configured platform's doctor check,
the list of secrets no log line may show, and the names that look like settings but are
not (a providers file's key variables are known names).

Each imports what it builds only when that is configured, so `parley doctor` and the other
commands that need one of them do not import the whole application (bot/app.py) or every
vendor's SDK. Like bot/app.py, this is a composition root: it may join the core with
`integrations` and `tools`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bot.chat.desk import Desk
from bot.chat.platform import Platform
from bot.config import Settings, misnamed_settings
from bot.errors import ConfigError
from bot.llm.base import Provider
from bot.ops.doctor import Check
from bot.toolkit import ToolRegistry

if TYPE_CHECKING:
    from bot.llm.transcription import OpenAITranscriber
    from tools.mcp import MCPTools


def build_provider(settings: Settings) -> Provider:
    llm = settings.llm
    if llm.providers_file is not None:
        # Named providers and their fallback chain; OPENAI_*/ANTHROPIC_* are not used.
        from bot.llm.providers import build_from_file

        return build_from_file(llm)[0]
    if llm.provider == "anthropic":
        if llm.anthropic_api_key is None or not llm.anthropic_api_key.get_secret_value():
            raise ConfigError(
                "ANTHROPIC_API_KEY is not set: PARLEY_PROVIDER=anthropic needs it in .env "
                "(and PARLEY_MODEL set to a Claude model)"
            )
        from bot.llm.anthropic import AnthropicProvider

        return AnthropicProvider.from_settings(llm)
    if llm.api_key is None or not llm.api_key.get_secret_value():
        raise ConfigError(
            "OPENAI_API_KEY is not set: put it in .env (and OPENAI_BASE_URL and PARLEY_MODEL for a "
            "non-OpenAI endpoint; local servers such as Ollama accept any non-empty key)"
        )
    from bot.llm.openai_compat import OpenAICompatProvider

    return OpenAICompatProvider.from_settings(llm)


def build_transcriber(settings: Settings) -> OpenAITranscriber | None:
    """The voice-note transcriber, or None while PARLEY_TRANSCRIPTION_MODEL is unset."""
    if not settings.media.transcription_enabled:
        return None
    from bot.llm.transcription import OpenAITranscriber

    return OpenAITranscriber.from_settings(settings.media)


def build_mcp(settings: Settings, registry: ToolRegistry) -> MCPTools | None:
    """The MCP servers of `PARLEY_MCP_CONFIG`, registering into `registry` (None: none)."""
    if not settings.mcp.config:
        return None
    from tools.mcp import MCPTools, load_config

    return MCPTools(
        load_config(settings.mcp.config),
        registry,
        start_timeout=settings.mcp.start_timeout_seconds,
        initial_backoff=settings.mcp.restart_backoff_seconds,
        probe_timeout=settings.mcp.probe_timeout_seconds,
        hard_timeout=settings.mcp.call_hard_timeout_seconds,
    )


def log_secrets(settings: Settings) -> dict[str, str]:
    """Everything the logs must never show, as {value: what it is}: the secret settings
    and the MCP servers' header values (tokens). A broken MCP file adds nothing here
    (starting reports it)."""
    found = settings.secrets()
    if settings.mcp.config:
        from tools.mcp import load_config

        try:
            for config in load_config(settings.mcp.config):
                found |= config.secrets()
        except ConfigError:
            pass
    return found


def vendor_name(settings: Settings) -> str:
    """Who serves the model, as the overview labels it: anthropic, or the OpenAI-compatible
    vendor profile (openai, dashscope, deepseek, vllm, ollama, generic)."""
    if settings.llm.provider == "anthropic":
        return "anthropic"
    from bot.llm.profiles import profile_for

    return profile_for(settings.llm.profile, settings.llm.base_url).name


def build_platform_checks(settings: Settings) -> list[Check]:
    """The doctor's check of each configured platform (its token, its API)."""
    checks: list[Check] = []
    if settings.slack.enabled:
        from integrations.slack.doctor import slack_check

        checks.append(slack_check(settings.slack))
    if settings.telegram.bot_token is not None:
        from integrations.telegram.doctor import telegram_check

        checks.append(telegram_check(settings.telegram))
    return checks


def build_platforms(settings: Settings, desk: Desk) -> list[Platform]:
    """One adapter per chat service whose credentials are set, each given the desk."""
    platforms: list[Platform] = []
    if settings.slack.enabled:
        from integrations.slack import SlackPlatform

        platforms.append(
            SlackPlatform(
                settings.slack,
                desk,
                preview_delay=settings.bot.preview_delay_seconds,
                drain_timeout=settings.ops.shutdown_grace_seconds,
                locale_cache_seconds=settings.language.cache_seconds,
            )
        )
    if settings.telegram.bot_token is not None:
        from integrations.telegram import TelegramPlatform

        platforms.append(
            TelegramPlatform(
                settings.telegram,
                desk,
                preview_delay=settings.bot.preview_delay_seconds,
                ephemeral_approvals=settings.approvals.telegram_ephemeral,
            )
        )
    return platforms


def misnamed(settings: Settings, env_file: Path | None) -> list[str]:
    """Names in the .env file or the environment that look like settings but are not,
    and names the file sets twice; a providers file's key variables are known names."""
    key_names: list[str] = []
    if settings.llm.providers_file is not None:
        from bot.llm.providers import load_providers_file

        # A broken providers file is said by the command that builds the providers.
        with contextlib.suppress(ConfigError):
            specs = load_providers_file(settings.llm.providers_file)
            key_names = [spec.api_key_env for spec in specs.values()]
    return misnamed_settings(env_file, os.environ, also_known=key_names)
