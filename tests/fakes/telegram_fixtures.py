"""Pytest plugin: one fake Telegram Bot API server per test session.

`telegram_server` is started once; `telegram` resets it (calls, updates, messages,
scripted failures) and hands it to a test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.telegram_server import FakeTelegramServer


@pytest.fixture(scope="session")
def telegram_server() -> Iterator[FakeTelegramServer]:
    """The session's fake Bot API; prefer `telegram`, which starts each test clean."""
    with FakeTelegramServer() as server:
        yield server


@pytest.fixture
def telegram(telegram_server: FakeTelegramServer) -> FakeTelegramServer:
    """The fake Bot API, reset for this test."""
    telegram_server.reset()
    return telegram_server
