"""Pytest plugin: the fake servers (scripted OpenAI and Anthropic, Open-Meteo, SMTP, and a
host that is no platform's).

Session-scoped servers are started once; the function-scoped fixtures (`llm`, `claude`,
`open_meteo`) reset them and hand them to a test, so every test starts clean.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import ScriptedAnthropicServer
from tests.fakes.file_host import ElsewhereServer
from tests.fakes.open_meteo import OpenMeteoServer
from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.smtp import SMTPServer
from tests.fakes.transcription_server import ScriptedTranscriptionServer


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


@pytest.fixture(scope="session")
def open_meteo_server() -> Iterator[OpenMeteoServer]:
    """The session's fake Open-Meteo (geocoding and forecast); prefer `open_meteo`."""
    with OpenMeteoServer() as server:
        yield server


@pytest.fixture
def open_meteo(open_meteo_server: OpenMeteoServer) -> OpenMeteoServer:
    """The fake Open-Meteo, reset for this test."""
    open_meteo_server.reset()
    return open_meteo_server


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, recording every message it accepts."""
    with SMTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def transcription_server() -> Iterator[ScriptedTranscriptionServer]:
    """The session's scripted /v1/audio/transcriptions server; prefer `transcription`."""
    with ScriptedTranscriptionServer() as server:
        yield server


@pytest.fixture
def transcription(transcription_server: ScriptedTranscriptionServer) -> ScriptedTranscriptionServer:
    """The scripted transcription server, reset for this test."""
    transcription_server.reset()
    return transcription_server


@pytest.fixture
def elsewhere() -> Iterator[ElsewhereServer]:
    """A host that is neither Slack nor Telegram (evil.example), started for this test."""
    with ElsewhereServer() as server:
        yield server
