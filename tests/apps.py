"""Building real Applications for tests: scripted model, SQLite file, recording messenger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app import Application
from bot.config import Settings
from bot.domain import ChatRef
from tests.fakes.openai_server import ScriptedOpenAIServer


@dataclass
class RecordingMessenger:
    """A Messenger that keeps what it was asked to send; `fail_next` sends raise."""

    platform: str = "test"
    sent: list[tuple[ChatRef, str, str, float]] = field(default_factory=list)
    fail_next: int = 0

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("chat platform unreachable")
        self.sent.append((chat, text, thread_key, time.time()))

    @property
    def texts(self) -> list[str]:
        return [text for _, text, _, _ in self.sent]


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


AppFactory = Callable[..., Awaitable[Application]]


def two_providers(tmp_path: Path, llm_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """LLM settings with a providers file naming two providers of the scripted server:
    `primary` (the default, model primary-model) and `backup` (backup-model)."""
    monkeypatch.setenv("SCRIPTED_KEY", "sk-scripted")
    path = tmp_path / "providers.toml"
    path.write_text(
        "".join(
            f'[providers.{name}]\nbase_url = "{llm_url}"\napi_key_env = "SCRIPTED_KEY"\n'
            f'model = "{name}-model"\nprofile = "generic"\n\n'
            for name in ("primary", "backup")
        ),
        encoding="utf-8",
    )
    return {"providers_file": str(path), "provider": "primary"}


# Tests exercise the side-effecting tools, which the policy keeps off unless named.
ON_BY_DEFAULT = "all,launch,send_email"
DEFAULT_TOOLS = {"default_tools_dm": ON_BY_DEFAULT, "default_tools_group": ON_BY_DEFAULT}


def app_settings(llm_url: str, database_url: str, **groups: dict[str, Any]) -> Settings:
    """The settings every test application starts from: the scripted model at `llm_url`
    (no retries: a test scripts each answer), the database at `database_url`, the
    side-effecting tools on. Each of `groups` (`bot={...}`, `slack={...}`) overrides its
    group; `llm` is merged over the scripted model's, `admin` replaces the tool defaults."""
    llm = {"base_url": llm_url, "api_key": "sk-test-secret", "model": "scripted", "max_retries": 0}
    return Settings.load(
        env_file=None,
        llm={**llm, **groups.pop("llm", {})},
        database={"url": database_url},
        **{"admin": DEFAULT_TOOLS, **groups},
    )


@pytest.fixture
def database_url() -> str:
    """The database a suite's apps share; suites override it (a parametrized SQLite and
    PostgreSQL fixture of the same name). `make_app` depends on it only so that it is set
    up before, and torn down after, the apps: a database dropped under running apps leaves
    their lease and scheduler loops failing while they close."""
    return ""


@pytest.fixture
async def make_app(
    llm: ScriptedOpenAIServer, tmp_path: Path, database_url: str
) -> AsyncIterator[AppFactory]:
    """`await make_app(tools, messengers=[...], email={...}, reminders={...})`: a started
    Application on `tmp_path/parley.db` (the same file each call: a restart), closed
    after the test. `tools` defaults to every real tool; `provider=` replaces the one the
    settings would build (another vendor's harness); every other keyword is a settings
    group (see `app_settings`). Suites with their own defaults wrap this one."""
    apps: list[Application] = []

    async def make(
        tools: Any = None,
        *,
        messengers: tuple[Any, ...] = (),
        database_url: str = "",
        provider: Any = None,
        **groups: dict[str, Any],
    ) -> Application:
        url = database_url or f"sqlite:///{tmp_path / 'parley.db'}"
        settings = app_settings(llm.base_url, url, **groups)
        app = Application(settings, tools=tools, messengers=messengers, provider=provider)
        apps.append(app)  # closed even if starting fails
        await app.start()
        return app

    yield make
    for app in apps:
        await app.aclose()
