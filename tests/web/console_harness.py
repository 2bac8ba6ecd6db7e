"""A served Application with the admin console on, and an httpx client that signs in."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import Application
from bot.config import Settings
from tests.apps import DEFAULT_TOOLS
from tests.fakes.openai_server import ScriptedOpenAIServer

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class ConsoleHarness:
    app: Application
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        assert self.app.web is not None
        return f"http://127.0.0.1:{self.app.web.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=10)

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.app.aclose()


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/admin/login")
    return await client.post(
        "/admin/login", data={"csrf": csrf_of(page.text), "password": password}
    )


ConsoleFactory = Callable[..., Awaitable[ConsoleHarness]]


@pytest.fixture
async def make_console(llm: ScriptedOpenAIServer, tmp_path: Path) -> AsyncIterator[ConsoleFactory]:
    harnesses: list[ConsoleHarness] = []

    async def make(*, tools: Any = None, **admin: Any) -> ConsoleHarness:
        settings = Settings.load(
            env_file=None,
            llm={
                "base_url": llm.base_url,
                "api_key": "sk-test",
                "model": "scripted",
                "max_retries": 0,
            },
            database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
            http={"port": 0},
            admin={**DEFAULT_TOOLS, "console_password": PASSWORD, **admin},
        )
        app = Application(settings, tools=tools)
        await app.start()
        stop = asyncio.Event()
        task = asyncio.create_task(app.serve(stop))
        deadline = time.monotonic() + 10
        while app.web is None or not app.scheduler.running:
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "Parley did not start"
            await asyncio.sleep(0.01)
        harness = ConsoleHarness(app, stop, task)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
