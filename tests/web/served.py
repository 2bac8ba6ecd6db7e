"""One served Parley with every HTTP door open: Slack events, the Telegram webhook and
the console, on the fakes; and raw HTTP for what httpx will not send."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer
from tests.web.console_harness import ConsoleFactory, ConsoleHarness

SIGNING_SECRET = "test-signing-secret"
HOOK_SECRET = "hook_secret-for-tests"
HOOK_PATH = "/telegram/hook"

ServedFactory = Callable[..., Awaitable[ConsoleHarness]]


@pytest.fixture
def make_served(
    make_console: ConsoleFactory, slack: FakeSlackServer, telegram: FakeTelegramServer
) -> ServedFactory:
    """`await make_served(http={...}, **admin)`: Parley with Slack (HTTP), the Telegram
    webhook and the console, served on the fakes; stopped by `make_console`."""

    async def make(*, http: dict[str, Any] | None = None, **admin: Any) -> ConsoleHarness:
        return await make_console(
            tools=(),
            http=http,
            groups={
                "slack": {
                    "bot_token": "xoxb-test-token",
                    "signing_secret": SIGNING_SECRET,
                    "api_url": slack.api_url,
                },
                "telegram": {
                    "bot_token": TOKEN,
                    "base_url": telegram.base_url,
                    "webhook_url": f"https://parley.example.test{HOOK_PATH}",
                    "webhook_secret": HOOK_SECRET,
                },
            },
            **admin,
        )

    return make


def slack_headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    # Slack signs the raw bytes, whatever they are (slack_sdk's helper takes text only).
    timestamp = str(int(time.time()))
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


def fresh_unsigned(content_type: str = "application/json") -> dict[str, str]:
    """Fresh signature headers with a wrong signature: the body must be read to tell."""
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }


async def chunks(total: int, size: int = 65_536) -> AsyncIterator[bytes]:
    """`total` bytes as a chunked upload (httpx sends no Content-Length for an iterator)."""
    piece = b"x" * size
    sent = 0
    while sent < total:
        part = piece[: min(size, total - sent)]
        sent += len(part)
        yield part


async def status_with_body_unfinished(port: int, path: str, headers: dict[str, str]) -> int:
    """Send the head and one chunk of a chunked body that never ends, and read the status:
    an answer here was given without waiting for the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + b'4\r\n{"a"\r\n')
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        return int(status_line.split()[1])
    finally:
        writer.close()


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
