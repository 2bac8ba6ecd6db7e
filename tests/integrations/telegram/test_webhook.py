"""Webhook mode: Parley's own web server takes updates, and only with the secret token."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import Application
from bot.errors import ConfigError
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import FakeTelegramServer, private_message
from tests.integrations.telegram.conftest import AppFactory, platform_of

SECRET = "s3cret_token-for-tests"
HOOK = "https://parley.example.test/telegram/hook"


@pytest.fixture
async def served(telegram_app: AppFactory) -> AsyncIterator[tuple[Application, str]]:
    """An application serving HTTP (port 0) in webhook mode, and its webhook URL."""
    app = await telegram_app(start=False, webhook_url=HOOK, webhook_secret=SECRET)
    stop = asyncio.Event()
    task = asyncio.create_task(app.serve(stop))
    while not platform_of(app).application.running:
        if task.done():
            await task
        await asyncio.sleep(0.01)
    assert app.web is not None
    yield app, f"http://127.0.0.1:{app.web.port}/telegram/hook"
    stop.set()
    await task


async def test_start_registers_the_webhook_with_its_secret(
    telegram: FakeTelegramServer, served: tuple[Application, str]
) -> None:
    # `served` returns once PTB runs; the platform registers the webhook right after.
    await telegram.wait_for(lambda server: bool(server.calls_of("setWebhook")))
    [registered] = telegram.calls_of("setWebhook")
    assert registered.params["url"] == HOOK
    assert registered.params["secret_token"] == SECRET
    assert telegram.calls_of("getUpdates") == []


@pytest.mark.parametrize("header", [None, "", "wrong", SECRET + "x", SECRET.upper()])
async def test_a_request_without_the_right_secret_gets_403_and_nothing_happens(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    served: tuple[Application, str],
    header: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, url = served
    llm.set_default(text_reply("should not happen"))
    headers = {} if header is None else {"X-Telegram-Bot-Api-Secret-Token": header}
    body = {"update_id": 90, **private_message(4001, "hi")}

    with caplog.at_level(logging.WARNING):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json=body, headers=headers)
    await asyncio.sleep(0.2)

    assert response.status_code == 403 and response.content == b""
    assert llm.requests == [] and telegram.calls_of("sendMessage") == []
    # The update was never claimed.
    assert await app.store.claim_event("telegram", str(telegram.bot_id), "90")
    assert SECRET not in caplog.text


async def test_an_update_with_the_secret_is_answered_once(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, served: tuple[Application, str]
) -> None:
    _, url = served
    llm.set_default(text_reply("Hello from the webhook."))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    body = {"update_id": 91, **private_message(4001, "hi")}

    async with httpx.AsyncClient() as client:
        first = await client.post(url, json=body, headers=headers)
        again = await client.post(url, json=body, headers=headers)
        garbage = await client.post(url, content=b"{not json", headers=headers)
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
    await asyncio.sleep(0.2)

    assert (first.status_code, again.status_code, garbage.status_code) == (200, 200, 400)
    [sent] = telegram.calls_of("sendMessage")
    assert sent.params["text"] == "Hello from the webhook."
    assert len(llm.requests) == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://parley.example.test/telegram/hook", "An HTTPS URL must be provided"),
        ("https://parley.example.test:8080/telegram/hook", "only on ports 80, 88, 443 or 8443"),
    ],
)
async def test_a_webhook_url_telegram_refuses_stops_the_start_naming_the_setting(
    telegram_app: AppFactory, telegram: FakeTelegramServer, url: str, reason: str
) -> None:
    app = await telegram_app(start=False, webhook_url=url, webhook_secret=SECRET)
    platform = platform_of(app)

    with pytest.raises(ConfigError) as refused:
        await platform.start()

    assert str(refused.value).startswith(
        "PARLEY_TELEGRAM_WEBHOOK_URL was refused by the Telegram Bot API (Bad webhook: "
    )
    assert reason.lower() in str(refused.value).lower()
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert not platform.application.running
