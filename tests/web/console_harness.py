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
from tests.apps import DEFAULT_TOOLS, app_settings
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
        if self.stop.is_set():
            return  # closed already (a test that drops its database closes first)
        self.stop.set()
        await self.task
        await self.app.aclose()


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(
    client: httpx.AsyncClient, password: str = PASSWORD, headers: dict[str, str] | None = None
) -> httpx.Response:
    page = await client.get("/admin/login", headers=headers)
    return await client.post(
        "/admin/login", data={"csrf": csrf_of(page.text), "password": password}, headers=headers
    )


ConsoleFactory = Callable[..., Awaitable[ConsoleHarness]]


async def wait_until_ready(app: Application, task: asyncio.Task[None]) -> None:
    """Until `/readyz` answers 200: web server up, platforms started, scheduler leading."""
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "Parley did not become ready"
            if app.web is not None and app.web.port:
                try:
                    url = f"http://127.0.0.1:{app.web.port}/readyz"
                    if (await client.get(url)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            await asyncio.sleep(0.02)


@pytest.fixture
async def make_console(llm: ScriptedOpenAIServer, tmp_path: Path) -> AsyncIterator[ConsoleFactory]:
    """`await make_console(tools=..., http={...}, slack={...}, **admin)`: a served
    Application with the console on; called twice, two replicas on one database."""
    harnesses: list[ConsoleHarness] = []

    async def make(
        *,
        tools: Any = None,
        http: dict[str, Any] | None = None,
        password: str = PASSWORD,
        database_url: str = "",
        groups: dict[str, dict[str, Any]] | None = None,
        **admin: Any,
    ) -> ConsoleHarness:
        settings = app_settings(
            llm.base_url,
            database_url or f"sqlite:///{tmp_path / 'parley.db'}",
            http={"port": 0, **(http or {})},
            admin={**DEFAULT_TOOLS, "console_password": password, **admin},
            **(groups or {}),
        )
        app = Application(settings, tools=tools)
        await app.start()
        stop = asyncio.Event()
        task = asyncio.create_task(app.serve(stop))
        harness = ConsoleHarness(app, stop, task)
        harnesses.append(harness)
        await wait_until_ready(app, task)
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
