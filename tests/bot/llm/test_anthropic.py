"""AnthropicProvider through the real `anthropic` SDK against the scripted Anthropic server,
which answers 400 to any request the Messages API would refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import Application
from bot.builders import build_provider
from bot.config import Settings
from bot.domain import ChatKind, ChatMessage, ChatRef, IncomingMessage, Role, ToolCall, UserRef
from bot.errors import (
    ConfigError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.llm.anthropic import AnthropicProvider, to_anthropic_messages
from bot.llm.base import TextDelta, ToolCallsReady, ToolSpec, TurnFinished
from tests.fakes.anthropic_server import (
    ScriptedAnthropicServer,
    anthropic_error_reply,
    anthropic_stream_error_reply,
    anthropic_text_reply,
    anthropic_tool_reply,
)
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tools import ALL_TOOLS

API_KEY = "sk-ant-test-SECRET-0123456789"
WEATHER = ToolSpec(
    "get_weather",
    "Weather.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
async def make_provider(claude: ScriptedAnthropicServer) -> AsyncIterator[MakeProvider]:
    made: list[AnthropicProvider] = []

    def make(**options: Any) -> AnthropicProvider:
        provider = AnthropicProvider(
            **{
                "api_key": API_KEY,
                "model": "claude-test",
                "base_url": claude.base_url,
                "max_retries": 0,
                **options,
            }
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def collect(provider: AnthropicProvider, messages: list[ChatMessage]) -> list[Any]:
    return [event async for event in provider.stream(messages, [WEATHER])]


async def test_request_shape_system_tools_key_and_usage(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_text_reply("Hi!", usage=(12, 3)))
    provider = make_provider(max_tokens=256, temperature=0.2, parallel_tool_calls=False)
    events = await collect(
        provider, [ChatMessage(Role.SYSTEM, "Be brief."), ChatMessage(Role.USER, "hello")]
    )
    assert events[:-1] == [TextDelta("Hi!")]
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert (finished.finish_reason, finished.usage.prompt_tokens, finished.model) == (
        "stop",
        12,
        "claude-test",
    )
    request = claude.requests[0]
    assert request["system"] == "Be brief." and request["max_tokens"] == 256
    assert request["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert request["tools"][0]["input_schema"]["required"] == ["city"]
    assert request["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert request["stream"] is True and request["temperature"] == 0.2
    assert claude.request_headers[0]["authorization"] == f"Bearer {API_KEY}"  # SDK 2.x


async def test_non_streaming_mode(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_tool_reply(("get_weather", {"city": "Oslo"}), text="Let me see."))
    events = await collect(make_provider(stream=False), [ChatMessage(Role.USER, "weather")])
    assert events[0] == TextDelta("Let me see.")
    assert isinstance(events[1], ToolCallsReady)
    assert events[1].calls[0].arguments == {"city": "Oslo"}
    assert isinstance(events[2], TurnFinished) and events[2].finish_reason == "tool_calls"
    assert "stream" not in claude.requests[0]


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (anthropic_error_reply(401, message="invalid x-api-key"), ProviderAuthError, "401"),
        (anthropic_error_reply(429, message="slow down"), ProviderRateLimited, "slow down"),
        (anthropic_error_reply(529, message="Overloaded"), ProviderUnavailable, "529"),
        (
            anthropic_error_reply(400, message="prompt is too long: 210000 tokens > 200000"),
            ContextTooLong,
            "too long",
        ),
        (anthropic_error_reply(404, message="model: claude-x"), ProviderBadRequest, "model name"),
        (anthropic_stream_error_reply("Overloaded"), ProviderUnavailable, "mid-stream"),
    ],
)
async def test_errors_map_to_the_error_tree_without_the_key(
    claude: ScriptedAnthropicServer,
    make_provider: MakeProvider,
    reply: Any,
    error: type[Exception],
    text: str,
) -> None:
    claude.script(reply)
    with pytest.raises(error, match=text) as caught:
        await collect(make_provider(), [ChatMessage(Role.USER, "hi")])
    assert API_KEY not in str(caught.value)


async def test_unreachable_server_is_unavailable(make_provider: MakeProvider) -> None:
    provider = make_provider(base_url="http://127.0.0.1:9", connect_timeout=1)
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        await collect(provider, [ChatMessage(Role.USER, "hi")])


def test_history_is_converted_merged_and_repaired() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    bad = ToolCall("call.2", "get_weather", None, "{oops", "not JSON")
    system, messages = to_anthropic_messages(
        [
            ChatMessage(Role.SYSTEM, "A"),
            ChatMessage(Role.ASSISTANT, "Earlier answer."),  # the window cut the user turn
            ChatMessage(Role.USER, "one"),
            ChatMessage(Role.USER, "two"),
            ChatMessage(Role.ASSISTANT, "", tool_calls=(call, bad)),
            ChatMessage(Role.TOOL, "sunny", tool_call_id="call_1", name="get_weather"),
            # call.2 has no stored result; an orphan result follows
            ChatMessage(Role.TOOL, "late", tool_call_id="call_9", name="x", is_error=True),
            ChatMessage(Role.USER, ""),
            ChatMessage(Role.SYSTEM, "B"),
        ]
    )
    assert system == "A\n\nB"
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two"},
    ]
    tool_uses = messages[3]["content"]
    assert [(b["id"], b["input"]) for b in tool_uses] == [
        ("call_1", {"city": "Oslo"}),
        ("call_2", {}),
    ]
    results = messages[4]["content"]
    assert results[0] == {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}
    assert results[1]["type"] == "text" and "late" in results[1]["text"]
    assert results[2]["tool_use_id"] == "call_2" and results[2]["is_error"] is True


def test_settings_choose_the_anthropic_provider() -> None:
    settings = Settings.load(env_file=None, llm={"provider": "anthropic", "model": "claude-x"})
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        build_provider(settings)


async def test_a_conversation_switches_vendor_mid_history(
    llm: ScriptedOpenAIServer, claude: ScriptedAnthropicServer, tmp_path: Path
) -> None:
    """Turns with the OpenAI-compatible provider, then the Anthropic one on the same
    stored history (tool calls included); the Anthropic server accepts the request."""
    database = {"url": f"sqlite:///{tmp_path / 'parley.db'}"}
    chat = ChatRef("test", "c1", ChatKind.DM)
    user = UserRef("test", "u1", "U")
    first = Application(
        Settings.load(
            env_file=None,
            llm={"base_url": llm.base_url, "api_key": "sk-test", "model": "gpt", "max_retries": 0},
            database=database,
        ),
        tools=ALL_TOOLS,
    )
    await first.start()
    llm.script(
        tool_call_reply(
            ("get_current_time", {"timezone": "Asia/Tokyo"}),
            ("get_current_time", {"timezone": "nowhere/invalid"}),
        ),
        text_reply("It is evening in Tokyo."),
    )
    try:
        outcome = await first.engine.handle(
            IncomingMessage(chat, user, "time in Tokyo?"), RecordingSurface()
        )
    finally:
        await first.aclose()
    assert outcome.text == "It is evening in Tokyo." and outcome.tool_results[1].is_error

    second = Application(
        Settings.load(
            env_file=None,
            llm={
                "provider": "anthropic",
                "anthropic_api_key": API_KEY,
                "anthropic_base_url": claude.base_url,
                "model": "claude-test",
                "max_retries": 0,
            },
            database=database,
        ),
        tools=ALL_TOOLS,
    )
    assert isinstance(second.provider, AnthropicProvider)
    await second.start()
    claude.script(
        anthropic_tool_reply(("get_current_time", {"timezone": "UTC"})),
        anthropic_text_reply("And it is morning in UTC."),
    )
    try:
        outcome = await second.engine.handle(
            IncomingMessage(chat, user, "and UTC?"), RecordingSurface()
        )
    finally:
        await second.aclose()
    assert claude.rejected == []
    assert outcome.text == "And it is morning in UTC." and not outcome.error
    request = claude.requests[1]
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    earlier = request["messages"][2]["content"]
    assert [b["type"] for b in earlier] == ["tool_result", "tool_result"]
    assert earlier[1]["is_error"] is True
    assert request["system"].startswith("You are Parley")


async def test_thinking_survives_storage_across_turns(
    claude: ScriptedAnthropicServer, tmp_path: Path
) -> None:
    """Engine and SQLite in the loop: the signed block of a tool round is stored with its
    assistant message and sent back, unchanged, in the round's follow-up; the next turn
    starts clean and is accepted too."""
    chat = ChatRef("test", "c1", ChatKind.DM)
    user = UserRef("test", "u1", "U")
    app = Application(
        Settings.load(
            env_file=None,
            llm={
                "provider": "anthropic",
                "anthropic_api_key": API_KEY,
                "anthropic_base_url": claude.base_url,
                "model": "claude-test",
                "max_retries": 0,
                "thinking": "on",
            },
            database={"url": f"sqlite:///{tmp_path / 'parley.db'}"},
        ),
        tools=ALL_TOOLS,
    )
    await app.start()
    claude.checks_prefix = True  # as models with preserved thinking do
    claude.script(
        anthropic_tool_reply(("get_current_time", {"timezone": "UTC"}), thinking="Clock."),
        anthropic_text_reply("It is noon.", thinking="Say it."),
        anthropic_text_reply("Bye!"),
    )
    try:
        first = await app.engine.handle(IncomingMessage(chat, user, "time?"), RecordingSurface())
        second = await app.engine.handle(IncomingMessage(chat, user, "bye"), RecordingSurface())
    finally:
        await app.aclose()
    assert (first.text, second.text) == ("It is noon.", "Bye!")
    assert claude.rejected == []
    thinking = [
        [b for m in r["messages"] for b in m["content"] if b["type"] == "thinking"]
        for r in claude.requests
    ]
    assert [[b["thinking"] for b in blocks] for blocks in thinking] == [
        [],
        ["Clock."],
        [],
    ]
