"""Telegram settings: what enables the adapter and what refuses to start."""

from __future__ import annotations

import os

import pytest

from bot.app import Application
from bot.config import Settings
from bot.errors import ConfigError
from integrations.telegram import TelegramPlatform
from tests.fakes.openai_server import ScriptedOpenAIServer


def settings(llm: ScriptedOpenAIServer, tmp_path, **telegram: str) -> Settings:
    return Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk-test"},
        database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
        telegram=telegram,
    )


async def test_the_token_enables_telegram(llm: ScriptedOpenAIServer, tmp_path) -> None:
    without = Application(settings(llm, tmp_path))
    with_token = Application(settings(llm, tmp_path, bot_token="1:abc"))
    try:
        assert without.platforms == []
        [platform] = with_token.platforms
        assert isinstance(platform, TelegramPlatform) and platform.name == "telegram"
        assert platform.routes() == []  # long polling needs no route
    finally:
        await without.aclose()
        await with_token.aclose()


async def test_building_the_adapter_leaves_the_environment_alone(
    llm: ScriptedOpenAIServer, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB_TIMEDELTA would change every duration PTB returns, for every library in the process.
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    before = dict(os.environ)
    app = Application(settings(llm, tmp_path, bot_token="1:abc"))
    try:
        assert isinstance(app.platforms[0], TelegramPlatform)
        assert dict(os.environ) == before
    finally:
        await app.aclose()


def test_a_webhook_url_without_a_secret_is_refused(
    llm: ScriptedOpenAIServer, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("PARLEY_TELEGRAM_WEBHOOK_URL", "https://bot.example.com/hook")
    loaded = Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk-test"},
        database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
    )
    engine_less = loaded.telegram

    with pytest.raises(ConfigError, match="PARLEY_TELEGRAM_WEBHOOK_SECRET must be set"):
        TelegramPlatform(engine_less, desk=None, preview_delay=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "x" * 257])
def test_a_webhook_secret_telegram_would_refuse_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("PARLEY_TELEGRAM_WEBHOOK_SECRET", secret)

    with pytest.raises(ConfigError, match=r"^PARLEY_TELEGRAM_WEBHOOK_SECRET: ") as caught:
        Settings.load(env_file=None)

    assert secret not in str(caught.value)
