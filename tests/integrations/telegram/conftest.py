"""A Parley application wired to the fake Bot API and the scripted model, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from bot.app import Application
from bot.config import Settings
from bot.toolkit import Tool
from integrations.telegram import TelegramPlatform
from tests.apps import DEFAULT_TOOLS
from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer
from tools import ALL_TOOLS

AppFactory = Callable[..., Awaitable[Application]]


def platform_of(app: Application) -> TelegramPlatform:
    [platform] = app.platforms
    assert isinstance(platform, TelegramPlatform)
    return platform


@pytest.fixture
async def make_app(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, tmp_path: Path
) -> AsyncIterator[AppFactory]:
    """Build, migrate and start an application with the Telegram adapter polling (or, with
    `start=False`, leave starting to the test); everything is stopped afterwards.
    `preview_delay=0` shows progress from the first word, as a test of streaming wants."""
    running: list[tuple[Application, bool]] = []

    async def make(
        tools: Iterable[Tool] = ALL_TOOLS,
        *,
        start: bool = True,
        database: Path | None = None,
        admin: dict[str, Any] | None = None,
        preview_delay: float | None = None,
        confirm_timeout: float | None = None,
        **options: Any,
    ) -> Application:
        settings = Settings.load(
            env_file=None,
            llm={
                "base_url": llm.base_url,
                "api_key": "sk-test-secret",
                "model": "scripted",
                "max_retries": 0,
            },
            database={"url": f"sqlite:///{database or tmp_path / 'parley.db'}"},
            http={"port": 0},
            bot={
                **({} if preview_delay is None else {"preview_delay_seconds": preview_delay}),
                **({} if confirm_timeout is None else {"confirm_timeout_seconds": confirm_timeout}),
            },
            telegram={"bot_token": TOKEN, "base_url": telegram.base_url, **options},
            admin={**DEFAULT_TOOLS, **(admin or {})},
        )
        app = Application(settings, tools=tools)
        await app.start()
        if start:
            await platform_of(app).start()
        running.append((app, start))
        return app

    yield make
    for app, started in running:
        if started:
            await stop(app)
        await app.aclose()


async def stop(app: Application) -> None:
    platform = platform_of(app)
    if platform.application.running:
        await platform.stop()
