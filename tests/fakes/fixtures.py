"""Pytest plugin: one scripted OpenAI-compatible server per test session.

`openai_server` is started once; `llm` resets it (queue, default, recorded requests)
and hands it to a test. `anthropic_server`/`claude` do the same for the scripted
Anthropic Messages API server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import ScriptedAnthropicServer
from tests.fakes.openai_server import ScriptedOpenAIServer


@pytest.fixture(scope="session")
def openai_server() -> Iterator[ScriptedOpenAIServer]:
    """The session's scripted server; prefer `llm`, which starts each test clean."""
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture
def llm(openai_server: ScriptedOpenAIServer) -> ScriptedOpenAIServer:
    """The scripted server, reset for this test."""
    openai_server.reset()
    return openai_server


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[ScriptedAnthropicServer]:
    """The session's scripted Anthropic Messages API server; prefer `claude`."""
    with ScriptedAnthropicServer() as server:
        yield server


@pytest.fixture
def claude(anthropic_server: ScriptedAnthropicServer) -> ScriptedAnthropicServer:
    """The scripted Anthropic server, reset for this test."""
    anthropic_server.reset()
    return anthropic_server
