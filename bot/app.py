"""The composition root: builds every object from `Settings`.

Only this module (and the CLI that calls it) imports `bot`, `integrations` and `tools`
together. There are no module-level singletons: tests build as many applications as
they like, each with its own database and provider.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import text

from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConfigError
from bot.llm.base import Provider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.platform import Platform
from bot.storage import ConversationStore, Database, migrate
from bot.toolkit import Tool, ToolRegistry
from bot.web import WebServer, create_web_app
from integrations.telegram import TelegramPlatform
from tools import ALL_TOOLS

log = logging.getLogger(__name__)


def build_provider(settings: Settings) -> Provider:
    llm = settings.llm
    if llm.provider == "anthropic":
        raise ConfigError("PARLEY_PROVIDER: 'anthropic' is not available yet; use 'openai'")
    if llm.api_key is None or not llm.api_key.get_secret_value():
        raise ConfigError(
            "OPENAI_API_KEY is not set: put it in .env (and OPENAI_BASE_URL and PARLEY_MODEL for a "
            "non-OpenAI endpoint; local servers such as Ollama accept any non-empty key)"
        )
    return OpenAICompatProvider.from_settings(llm)


class Application:
    """Everything one Parley process runs, with an explicit start and stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider: Provider | None = None,
        tools: Iterable[Tool] | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider or build_provider(settings)
        self.database = Database.from_settings(settings.database)
        self.store = ConversationStore(self.database)
        self.tools = ToolRegistry(ALL_TOOLS if tools is None else tools)
        self.engine = Engine(
            provider=self.provider, store=self.store, tools=self.tools, settings=settings.bot
        )
        self.platforms: list[Platform] = self.build_platforms()
        self.web: WebServer | None = None

    def build_platforms(self) -> list[Platform]:
        """One adapter per chat service whose credentials are set."""
        platforms: list[Platform] = []
        if self.settings.telegram.bot_token is not None:
            platforms.append(TelegramPlatform(self.settings.telegram, self.engine))
        return platforms

    async def start(self) -> None:
        """Bring the database schema up to date; call before handling any turn."""
        await migrate(self.settings.database.url)

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the long-lived services (web server, platforms) until `stop` is set."""
        routes = [route for platform in self.platforms for route in platform.routes()]
        app = create_web_app(health=self.health, routes=routes)
        self.web = WebServer(app, host=self.settings.http.host, port=self.settings.http.port)
        await self.web.start()
        log.info("serving http://%s:%d/healthz", self.settings.http.host, self.web.port)
        started: list[Platform] = []
        try:
            for platform in self.platforms:
                await platform.start()
                started.append(platform)
            if started:
                log.info("platforms: %s", ", ".join(p.name for p in started))
            else:
                log.info("no chat platform configured yet: try `parley chat` in a terminal")
            await stop.wait()
        finally:
            log.info("stopping")
            for platform in reversed(started):
                await platform.stop()
            await self.web.stop()

    async def health(self) -> dict[str, object]:
        async with self.database.read() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return {"database": "ok", "model": self.provider.model}

    async def aclose(self) -> None:
        await self.provider.aclose()
        await self.database.aclose()
