"""A Parley application wired to the fake Bot API and the scripted model, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from bot.app import Application
from bot.toolkit import Tool
from integrations.telegram import TelegramPlatform
from tests.apps import DEFAULT_TOOLS, AppFactory
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer
from tools import ALL_TOOLS


def platform_of(app: Application) -> TelegramPlatform:
    [platform] = app.platforms
    assert isinstance(platform, TelegramPlatform)
    return platform


@pytest.fixture
async def telegram_app(
    make_app: AppFactory, telegram: FakeTelegramServer, tmp_path: Path
) -> AsyncIterator[AppFactory]:
    """The one app factory (tests/apps.py) with the Telegram adapter on the fake Bot API,
    polling (or, with `start=False`, leave starting to the test); its platform is stopped
    afterwards. `preview_delay=0` shows progress from the first word, as a test of
    streaming wants; `media`, `llm` and `bot` are those settings groups; other keywords are
    Telegram settings (`rich_messages=True` for rich final answers)."""
    started: list[Application] = []

    async def make(
        tools: Iterable[Tool] = ALL_TOOLS,
        *,
        start: bool = True,
        database: Path | None = None,
        admin: dict[str, Any] | None = None,
        preview_delay: float | None = None,
        confirm_timeout: float | None = None,
        media: dict[str, Any] | None = None,
        llm: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
        mcp: dict[str, Any] | None = None,
        bot: dict[str, Any] | None = None,
        **options: Any,
    ) -> Application:
        app = await make_app(
            tools,
            database_url=f"sqlite:///{database or tmp_path / 'parley.db'}",
            http={"port": 0},
            bot={
                **({} if preview_delay is None else {"preview_delay_seconds": preview_delay}),
                **({} if confirm_timeout is None else {"confirm_timeout_seconds": confirm_timeout}),
                **(bot or {}),
            },
            # The HTML path unless a test asks for rich messages (test_rich_messages.py).
            telegram={
                "bot_token": TOKEN,
                "base_url": telegram.base_url,
                "rich_messages": False,
                **options,
            },
            admin={**DEFAULT_TOOLS, **(admin or {})},
            **({"media": media} if media else {}),
            **({"llm": llm} if llm else {}),
            email=email or {},
            **({"mcp": mcp} if mcp else {}),
        )
        if start:
            await platform_of(app).start()
            started.append(app)
        return app

    yield make
    for app in started:
        await stop(app)


async def stop(app: Application) -> None:
    platform = platform_of(app)
    if platform.application.running:
        await platform.stop()
