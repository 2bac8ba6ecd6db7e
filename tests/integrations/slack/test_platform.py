"""Building the Slack platform from settings, and the Surface's admin check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import Application
from bot.config import Settings
from bot.errors import ConfigError
from integrations.slack import SlackPlatform
from integrations.telegram import TelegramPlatform
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import HarnessFactory, dm_event


def settings(tmp_path: Path, llm: ScriptedOpenAIServer, **slack: str) -> Settings:
    return Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk-test"},
        database={"url": f"sqlite:///{tmp_path / 'p.db'}"},
        slack=slack,
    )


async def test_slack_is_built_only_when_its_token_is_set(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    without = Application(settings(tmp_path, llm))
    with_token = Application(
        settings(tmp_path, llm, bot_token="xoxb-1", signing_secret="s", command="/ask")
    )
    try:
        assert without.platforms == []
        [platform] = with_token.platforms
        assert isinstance(platform, SlackPlatform) and platform.name == "slack"
        assert [route.path for route in platform.routes()] == ["/slack/events"]  # type: ignore[attr-defined]
        assert platform.messenger.platform == "slack"
    finally:
        await without.aclose()
        await with_token.aclose()


async def test_http_mode_without_a_signing_secret_is_a_config_error(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        Application(settings(tmp_path, llm, bot_token="xoxb-1"))


def test_the_command_name_must_be_a_slash_command(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    with pytest.raises(ConfigError, match="PARLEY_SLACK_COMMAND"):
        settings(tmp_path, llm, command="parley")


async def test_a_file_share_message_is_still_a_turn(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(text_reply("Got it."))
    await harness.event(dm_event("see attached", subtype="file_share"))
    await slack.wait_for("chat.stopStream")
    assert llm.requests[0]["messages"][-1]["content"] == "see attached"


async def test_timing_and_the_confirmation_timeout_come_from_the_settings(
    tmp_path: Path, llm: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("PARLEY_SLACK_STREAM_INTERVAL", "2.5")
    monkeypatch.setenv("PARLEY_SLACK_UPDATE_INTERVAL", "4")
    monkeypatch.setenv("PARLEY_CONFIRM_TIMEOUT", "42")
    loaded = Settings.load(
        env_file=None,
        llm={"base_url": llm.base_url, "api_key": "sk-test"},
        database={"url": f"sqlite:///{tmp_path / 'p.db'}"},
    )
    app = Application(loaded)
    try:
        slack, telegram = app.platforms
        assert isinstance(slack, SlackPlatform)
        assert (slack.stream_interval, slack.update_interval) == (2.5, 4.0)
        # One setting for both platforms: the one gate's questions wait as long in either.
        assert isinstance(telegram, TelegramPlatform)
        assert app.desk.approvals.timeout == timedelta(seconds=42)
    finally:
        await app.aclose()


def test_the_former_telegram_name_of_the_confirmation_timeout_is_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARLEY_TELEGRAM_CONFIRM_TIMEOUT", "17")
    assert Settings.load(env_file=None).bot.confirm_timeout_seconds == 17.0
