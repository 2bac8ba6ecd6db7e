"""Pytest plugin: one fake Slack Web API per test session; `slack` starts each test clean."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack_server import FakeSlackServer


@pytest.fixture(scope="session")
def slack_server() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def slack(slack_server: FakeSlackServer) -> FakeSlackServer:
    """The fake Slack, with its recorded calls and scripted failures cleared."""
    slack_server.reset()
    return slack_server
