"""A running Parley with Slack in HTTP or Socket Mode, driven by signed requests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.app import Application
from bot.toolkit import Tool
from integrations.slack import SlackPlatform
from tests.apps import DEFAULT_TOOLS, app_settings
from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.slack_server import BOT_USER_ID, TEAM_ID, FakeSlackServer
from tools import ALL_TOOLS

SIGNING_SECRET = "test-signing-secret"
ALICE = "UALICE"
EVE = "UEVE"
DM_CHANNEL = "D0ALICE"
CHANNEL = "C0GENERAL"


def new_ts() -> str:
    return f"{time.time():.6f}"


def event_body(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM_ID,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def dm_event(text: str, *, user: str = ALICE, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": DM_CHANNEL,
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": new_ts(),
        **extra,
    }


def mention_event(text: str, *, user: str = ALICE, **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "channel": CHANNEL,
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": new_ts(),
        **extra,
    }


def sign(body: str, timestamp: int) -> str:
    return SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=str(timestamp), body=body)


@dataclass
class SlackHarness:
    """One running Application with Slack, and ways to send it signed requests."""

    app: Application
    platform: SlackPlatform
    stop_event: asyncio.Event
    task: asyncio.Task[None]
    session: aiohttp.ClientSession
    closed: bool = False
    event_ids: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.app.web is not None
        return f"http://127.0.0.1:{self.app.web.port}/slack/events"

    async def post(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature or sign(body, timestamp),
            **(headers or {}),
        }
        async with self.session.post(self.url, data=body.encode(), headers=sent) as response:
            return response.status, await response.text()

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None
    ) -> tuple[int, str]:
        event_id = event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"
        self.event_ids.append(event_id)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(json.dumps(event_body(event, event_id)), headers=headers)

    async def form(self, fields: dict[str, str]) -> tuple[int, str]:
        return await self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")

    async def command(
        self, text: str, *, user: str = ALICE, channel: str = DM_CHANNEL
    ) -> tuple[int, str]:
        return await self.form(
            {
                "token": "legacy",
                "team_id": TEAM_ID,
                "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/parley",
                "text": text,
                "api_app_id": "A0001",
                "response_url": "http://127.0.0.1:1/response/1",
                "trigger_id": "trigger",
            }
        )

    async def press(
        self,
        action_id: str,
        token: str,
        *,
        user: str,
        channel: str,
        message_ts: str,
        ephemeral: bool = False,
        response_url: str = "http://127.0.0.1:1/response/2",
        message: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "token": "legacy",
            "container": container,
            "channel": {"id": channel},
            "trigger_id": "trigger",
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "parley_approval",
                    "type": "button",
                    "value": token,
                    "action_ts": new_ts(),
                }
            ],
        }
        if state is not None:  # the message's inputs as they stand (checkboxes, menus)
            payload["state"] = {"values": state}
        if not ephemeral:  # Slack sends no message with a press on an ephemeral one
            # Slack sends the whole message pressed in (its text and blocks): `message`.
            payload["message"] = {"ts": message_ts, "type": "message", **(message or {})}
        return await self.form({"payload": json.dumps(payload)})

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stop_event.set()
        await self.task
        await self.app.aclose()


HarnessFactory = Callable[..., Awaitable[SlackHarness]]


@pytest.fixture
async def make_slack(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, tmp_path: Path
) -> AsyncIterator[HarnessFactory]:
    """Build and serve an Application with Slack on; call again to "restart" on the same
    database. Every harness is stopped at the end of the test. Most tests watch the
    stream, so replies stream from the first piece unless `preview_delay` is given."""
    harnesses: list[SlackHarness] = []
    session = aiohttp.ClientSession()

    async def make(
        tools: Iterable[Tool] = ALL_TOOLS,
        *,
        socket_mode: bool = False,
        admin: dict[str, Any] | None = None,
        preview_delay: float = 0.0,
        media: dict[str, Any] | None = None,
        email: dict[str, Any] | None = None,
        llm_settings: dict[str, Any] | None = None,
        **slack_options: Any,
    ) -> SlackHarness:
        options: dict[str, Any] = {
            "bot_token": "xoxb-test-token",
            "signing_secret": SIGNING_SECRET,
            "api_url": slack.api_url,
            "stream_interval_seconds": 0.05,
            "update_interval_seconds": 0.05,
            # The assistant status and plain answers unless a test asks for Slack's agent
            # features (test_sessions.py).
            "agent_sessions": False,
            **slack_options,
        }
        if socket_mode:
            options["app_token"] = "xapp-test-token"
        settings = app_settings(
            llm.base_url,
            f"sqlite:///{tmp_path / 'parley.db'}",
            bot={"preview_delay_seconds": preview_delay},
            http={"port": 0},
            slack=options,
            # Side-effecting test tools are off by default unless named.
            admin=admin or DEFAULT_TOOLS,
            **({"media": media} if media else {}),
            email=email or {},
            **({"llm": llm_settings} if llm_settings else {}),
        )
        app = Application(settings, tools=tools)
        await app.start()
        [platform] = app.platforms
        assert isinstance(platform, SlackPlatform)
        stop = asyncio.Event()
        task = asyncio.create_task(app.serve(stop))
        deadline = time.monotonic() + 10
        while platform.client.session is None or (socket_mode and not platform_connected(slack)):
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "Parley did not start"
            await asyncio.sleep(0.01)
        harness = SlackHarness(app, platform, stop, task, session)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
    await session.close()


def platform_connected(slack: FakeSlackServer) -> bool:
    return slack.wait_for_socket(0)


def streamed_text(slack: FakeSlackServer, channel: str | None = None) -> str:
    """Everything streamed into messages (start/append/stopStream), in call order."""
    calls = [
        (body["_order"], body.get("markdown_text", ""))
        for method in ("chat.startStream", "chat.appendStream", "chat.stopStream")
        for body in slack.bodies(method)
        if (channel is None or body.get("channel") == channel) and "_failed" not in body
    ]
    return "".join(text for _, text in sorted(calls))
