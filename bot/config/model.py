"""The model's settings: the provider and its fallbacks, media, and the turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from bot.config.base import SettingsGroup

ProfileName = Literal[
    "auto", "generic", "openai", "dashscope", "deepseek", "vllm", "ollama", "gemini", "ernie",
    "kimi", "glm", "minimax", "openrouter", "mistral", "ark", "siliconflow",
]  # fmt: skip


class LLMSettings(SettingsGroup):
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


# -- Voice notes and pictures (docs/media.md) -------------------------------------------


class MediaSettings(SettingsGroup):
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


class TurnSettings(SettingsGroup):
    """Durable turns (bot/turn/durable.py): how long a turn cut short by a dead process is run
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
