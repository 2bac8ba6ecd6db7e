"""OpenAICompatProvider driven through the real `openai` client over real HTTP.

Every test talks to `ScriptedOpenAIServer` (the `llm` fixture); nothing is mocked.
"""

from __future__ import annotations

import json
import re
import socket
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from bot.config import LLMSettings
from bot.domain import ChatMessage, Role, ToolCall, Usage
from bot.errors import (
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.llm.base import StreamEvent, TextDelta, ToolCallsReady, ToolSpec, TurnFinished
from bot.llm.openai_compat import OpenAICompatProvider, parse_tool_call
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    ScriptedReply,
    error_reply,
    stream_error_reply,
    text_reply,
    tool_call_reply,
)

API_KEY = "sk-test-0123456789abcdefSECRET"
MODEL = "test-model"
FAST_RETRY = {"retry-after-ms": "10"}
SERVER_ID = re.compile(r"^call_\d+$")
HELLO = [ChatMessage(Role.USER, "Hello")]
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

MakeProvider = Callable[..., OpenAICompatProvider]


@pytest.fixture
async def make_provider(llm: ScriptedOpenAIServer) -> AsyncIterator[MakeProvider]:
    """Build providers aimed at the fake server; all are closed after the test."""
    made: list[OpenAICompatProvider] = []

    def make(**overrides: Any) -> OpenAICompatProvider:
        options: dict[str, Any] = {
            "base_url": llm.base_url,
            "api_key": API_KEY,
            "model": MODEL,
            "timeout": 5.0,
            "connect_timeout": 2.0,
            "max_retries": 0,
        }
        provider = OpenAICompatProvider(**(options | overrides))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def collect(
    provider: OpenAICompatProvider,
    messages: Sequence[ChatMessage] = HELLO,
    tools: Sequence[ToolSpec] = (),
) -> list[StreamEvent]:
    return [event async for event in provider.stream(messages, tools)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def calls_of(events: list[StreamEvent]) -> tuple[ToolCall, ...]:
    ready = [event for event in events if isinstance(event, ToolCallsReady)]
    assert len(ready) == 1
    return ready[0].calls


def assert_event_order(events: list[StreamEvent]) -> None:
    kinds = [type(event).__name__ for event in events]
    assert kinds[-1] == "TurnFinished" and kinds.count("TurnFinished") == 1
    assert kinds.count("ToolCallsReady") <= 1
    if "ToolCallsReady" in kinds:
        assert kinds.index("ToolCallsReady") == len(kinds) - 2


# --- answers -------------------------------------------------------------------------


async def test_streamed_answer_arrives_in_pieces(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    llm.script(text_reply(text, chunk_size=5, usage=(12, 9)))
    events = await collect(make_provider())

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) == 9
    assert text_of(events) == text
    assert events[-1] == TurnFinished("stop", Usage(12, 9), MODEL)
    assert_event_order(events)
    sent = llm.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert llm.request_headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_streams_reuse_one_connection(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.set_default(text_reply("same socket please", chunk_size=4))
    provider = make_provider()
    for _ in range(3):
        await collect(provider)

    assert len(llm.request_clients) == 3
    assert len(set(llm.request_clients)) == 1


async def test_non_streamed_answer(llm: ScriptedOpenAIServer, make_provider: MakeProvider) -> None:
    llm.script(text_reply("A whole answer at once.", usage=(20, 6), finish_reason="length"))
    events = await collect(make_provider(stream=False))

    assert events == [
        TextDelta("A whole answer at once."),
        TurnFinished("length", Usage(20, 6), MODEL, outcome="length"),
    ]
    assert not llm.requests[0].get("stream")
    assert "stream_options" not in llm.requests[0]


async def test_non_streamed_tool_call(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(tool_call_reply(("get_weather", {"city": "Oslo"}), text="Checking."))
    events = await collect(make_provider(stream=False), tools=[WEATHER])

    assert events[0] == TextDelta("Checking.")
    (call,) = calls_of(events)
    assert call.name == "get_weather" and call.arguments == {"city": "Oslo"}
    assert call.id.startswith("call_")
    assert events[-1] == TurnFinished("tool_calls", Usage(10, 5), MODEL)
    assert_event_order(events)


async def test_reasoning_content_is_not_answer_text(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("Paris.", reasoning="The user wants a capital; secret thoughts."))
    events = await collect(make_provider())

    assert text_of(events) == "Paris."
    assert not any("secret" in event.text for event in events if isinstance(event, TextDelta))


async def test_usage_only_final_chunk_is_read(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("ok", usage=(1234, 56)))
    events = await collect(make_provider())

    assert events == [TextDelta("ok"), TurnFinished("stop", Usage(1234, 56), MODEL)]


async def test_stream_usage_off_sends_no_stream_options(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("no usage here", usage=(99, 99)))
    events = await collect(make_provider(stream_usage=False))

    assert "stream_options" not in llm.requests[0]
    assert text_of(events) == "no usage here"
    assert events[-1] == TurnFinished("stop", Usage(0, 0), MODEL)


# --- tool calls ----------------------------------------------------------------------


async def test_one_tool_call(llm: ScriptedOpenAIServer, make_provider: MakeProvider) -> None:
    llm.script(tool_call_reply(("get_weather", {"city": "Paris"})))
    events = await collect(make_provider(), tools=[WEATHER])

    (call,) = calls_of(events)
    assert (call.name, call.arguments, call.arguments_error) == (
        "get_weather",
        {"city": "Paris"},
        "",
    )
    assert SERVER_ID.match(call.id)
    assert events[-1] == TurnFinished("tool_calls", Usage(10, 5), MODEL)
    assert_event_order(events)


async def test_two_parallel_tool_calls_keep_their_order(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(
        tool_call_reply(
            ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "UTC"}), text="Let me look."
        )
    )
    events = await collect(make_provider(), tools=[WEATHER])

    assert isinstance(events[0], TextDelta) and text_of(events) == "Let me look."
    first, second = calls_of(events)
    assert (first.name, first.arguments) == ("get_weather", {"city": "Paris"})
    assert (second.name, second.arguments) == ("get_time", {"tz": "UTC"})
    assert first.id != second.id
    assert_event_order(events)


async def test_arguments_split_over_many_chunks(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    arguments = {
        "city": "São Paulo",
        "days": 3,
        "units": {"temp": "C", "wind": "km/h"},
        "notes": 'a "quoted" word',
    }
    llm.script(tool_call_reply(("get_weather", arguments), split_arguments=3))
    events = await collect(make_provider(), tools=[WEATHER])

    (call,) = calls_of(events)
    assert call.arguments == arguments


async def test_qwen_style_empty_continuations_keep_id_and_name(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(
        tool_call_reply(
            ("get_weather", {"city": "杭州"}),
            ("get_time", {"tz": "Asia/Shanghai"}),
            split_arguments=4,
            qwen_style=True,
        )
    )
    events = await collect(make_provider(), tools=[WEATHER])

    first, second = calls_of(events)
    assert (first.name, first.arguments) == ("get_weather", {"city": "杭州"})
    assert (second.name, second.arguments) == ("get_time", {"tz": "Asia/Shanghai"})
    # The server's own ids ("call_<n>"), not ids generated because an empty one overwrote them.
    assert SERVER_ID.match(first.id) and SERVER_ID.match(second.id) and first.id != second.id


async def test_empty_or_null_name_and_id_never_overwrite(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    def frame(call: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = {
            "model": "vendor-model",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [call]} if call else {},
                    "finish_reason": finish_reason,
                }
            ],
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    events = (
        frame(
            {
                "index": 0,
                "id": "call_x",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ),
        frame(
            {
                "index": 0,
                "id": "",
                "type": "function",
                "function": {"name": "", "arguments": '{"city":'},
            }
        ),
        frame({"index": 0, "id": None, "function": {"name": None, "arguments": ' "Rome"}'}}),
        frame({"index": 0, "id": "", "type": "function", "function": {}}),
        frame({}, "tool_calls"),
        b"data: [DONE]\n\n",
    )
    llm.script(ScriptedReply(status=200, body=b"", events=events, events_with_usage=events))
    result = await collect(make_provider(), tools=[WEATHER])

    assert calls_of(result) == (
        ToolCall("call_x", "get_weather", {"city": "Rome"}, '{"city": "Rome"}'),
    )
    assert result[-1] == TurnFinished("tool_calls", Usage(), "vendor-model")


async def test_malformed_arguments_are_recorded_not_raised(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(
        tool_call_reply(
            ("broken", '{"city": "Par'), ("listy", "[1, 2]"), ("empty", ""), split_arguments=2
        )
    )
    events = await collect(make_provider(), tools=[WEATHER])

    broken, listy, empty = calls_of(events)
    assert broken.arguments is None and broken.raw_arguments == '{"city": "Par'
    assert "JSON" in broken.arguments_error
    assert (
        listy.arguments is None
        and listy.raw_arguments == "[1, 2]"
        and "object" in listy.arguments_error
    )
    assert empty.arguments == {} and empty.arguments_error == ""


def test_a_call_without_id_gets_one() -> None:
    call = parse_tool_call("", "get_weather", "  ")
    assert call.id.startswith("call_") and len(call.id) > len("call_")
    assert call.arguments == {}


# --- request shape -------------------------------------------------------------------


async def test_request_shape_round_trips_history_and_tools(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("done"))
    provider = make_provider(
        temperature=0.2,
        max_tokens=300,
        parallel_tool_calls=True,
        strict_tools=True,
        extra_body={"enable_thinking": False, "top_k": 5},
    )
    history = [
        ChatMessage(Role.SYSTEM, "You are terse."),
        ChatMessage(Role.USER, "Weather in Paris and Rome?"),
        ChatMessage(
            Role.ASSISTANT,
            "",
            tool_calls=(
                ToolCall("call_a", "get_weather", {"city": "Paris"}),
                ToolCall("call_b", "get_weather", None, '{"city": "Ro', "not valid JSON"),
                ToolCall("call_c", "get_weather", None, "[1]", "not an object"),
            ),
        ),
        ChatMessage(Role.TOOL, "18°C", tool_call_id="call_a", name="get_weather"),
        ChatMessage(Role.TOOL, "error: bad arguments", tool_call_id="call_b", name="get_weather"),
        ChatMessage(Role.TOOL, "error: bad arguments", tool_call_id="call_c", name="get_weather"),
    ]
    await collect(provider, history, [WEATHER])

    sent = llm.requests[0]
    assert sent["model"] == MODEL
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
                {
                    "id": "call_c",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "[1]"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "error: bad arguments"},
        {"role": "tool", "tool_call_id": "call_c", "content": "error: bad arguments"},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER.parameters,
                "strict": True,
            },
        }
    ]
    assert sent["parallel_tool_calls"] is True
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 300)
    assert (sent["enable_thinking"], sent["top_k"]) == (False, 5)


async def test_optional_fields_are_left_out_by_default(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("one"), text_reply("two"))
    await collect(make_provider(), tools=[WEATHER])
    await collect(make_provider(parallel_tool_calls=False), tools=())

    with_tools, without_tools = llm.requests
    assert "strict" not in with_tools["tools"][0]["function"]
    for key in ("parallel_tool_calls", "temperature", "max_tokens", "enable_thinking"):
        assert key not in with_tools
    assert "tools" not in without_tools and "parallel_tool_calls" not in without_tools


async def test_from_settings(llm: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": API_KEY,
        "PARLEY_MODEL": "qwen-plus",
        "PARLEY_LLM_EXTRA_BODY": '{"enable_thinking": false}',
        "PARLEY_LLM_MAX_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = LLMSettings()
    provider = OpenAICompatProvider.from_settings(settings)
    try:
        llm.script(text_reply("hi"))
        events = await collect(provider)
    finally:
        await provider.aclose()

    assert provider.model == "qwen-plus"
    assert events[-1] == TurnFinished("stop", Usage(10, 5), "qwen-plus")
    assert llm.requests[0]["model"] == "qwen-plus" and llm.requests[0]["enable_thinking"] is False


# --- errors --------------------------------------------------------------------------


async def test_rate_limit_then_success_is_retried(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(
        error_reply(429, message="slow down", headers=FAST_RETRY), text_reply("second time lucky")
    )
    events = await collect(make_provider(max_retries=2))

    assert text_of(events) == "second time lucky"
    assert len(llm.requests) == 2


async def test_rate_limit_without_retries_left(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(error_reply(429, message="Rate limit reached for requests", headers=FAST_RETRY))
    with pytest.raises(ProviderRateLimited) as caught:
        await collect(make_provider(max_retries=0))
    assert caught.value.status_code == 429
    assert "Rate limit reached" in str(caught.value)


async def test_persistent_server_error_is_unavailable(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.set_default(error_reply(500, message="The server had an error", headers=FAST_RETRY))
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(make_provider(max_retries=1))

    assert caught.value.status_code == 500
    assert len(llm.requests) == 2
    assert "500" in str(caught.value) and "req_" in str(caught.value)


async def test_unauthorized_is_auth_error(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(error_reply(401, message="Incorrect API key provided", code="invalid_api_key"))
    with pytest.raises(ProviderAuthError) as caught:
        await collect(make_provider())
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("This model's maximum context length is 128000 tokens.", "context_length_exceeded"),
        (
            "This model's maximum context length is 65536 tokens. However, you requested 70000.",
            None,
        ),
        ("Range of input length should be [1, 30720]", "InvalidParameter"),
    ],
)
async def test_context_overflow(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider, message: str, code: str | None
) -> None:
    llm.script(error_reply(400, message=message, code=code))
    with pytest.raises(ContextTooLong) as caught:
        await collect(make_provider())
    assert caught.value.status_code == 400


async def test_other_bad_request(llm: ScriptedOpenAIServer, make_provider: MakeProvider) -> None:
    llm.script(error_reply(400, message="Invalid value for 'temperature'", code="invalid_value"))
    with pytest.raises(ProviderBadRequest) as caught:
        await collect(make_provider())
    assert not isinstance(caught.value, ContextTooLong)
    assert "temperature" in str(caught.value)


async def test_unknown_model_is_bad_request_naming_it(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(error_reply(404, message="The model `gpt-9` does not exist", code="model_not_found"))
    with pytest.raises(ProviderBadRequest) as caught:
        await collect(make_provider(model="gpt-9"))
    assert caught.value.status_code == 404
    assert "'gpt-9'" in str(caught.value)


async def test_error_chunk_mid_stream(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(stream_error_reply("The server had an error while processing your request."))
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for event in make_provider().stream(HELLO, ()):
            seen.append(event)

    with pytest.raises(ProviderError) as caught:
        await consume()

    assert seen and all(isinstance(event, TextDelta) for event in seen)
    assert isinstance(caught.value, ProviderUnavailable)  # the chunk says type "server_error"
    assert "while processing your request" in str(caught.value) and "req_" in str(caught.value)


async def test_chunk_that_is_not_json(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    events = (
        b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n',
        b"data: {oops\n\n",
    )
    llm.script(ScriptedReply(status=200, body=b"", events=events, events_with_usage=events))
    with pytest.raises(ProviderUnavailable, match="not JSON"):
        await collect(make_provider())


async def test_model_too_slow_mid_stream(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider
) -> None:
    llm.script(text_reply("late", delay=1.0))
    with pytest.raises(ProviderUnavailable, match="mid-stream"):
        await collect(make_provider(timeout=0.2))


async def test_connection_refused_is_unavailable(make_provider: MakeProvider) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(make_provider(base_url=f"http://127.0.0.1:{port}/v1"))
    assert f"127.0.0.1:{port}" in str(caught.value)


@pytest.mark.parametrize(
    "reply",
    [
        error_reply(400, message=f"bad request from key {API_KEY}"),
        error_reply(401, message=f"Incorrect API key provided: {API_KEY}."),
        error_reply(403, message=f"key {API_KEY} has no access"),
        error_reply(404, message=f"no such model for {API_KEY}"),
        error_reply(429, message=f"quota of {API_KEY} exceeded"),
        error_reply(503, message=f"overloaded for {API_KEY}"),
        stream_error_reply(f"stream failed for {API_KEY}"),
    ],
)
async def test_api_key_never_appears_in_errors(
    llm: ScriptedOpenAIServer, make_provider: MakeProvider, reply: ScriptedReply
) -> None:
    llm.script(reply)
    with pytest.raises(ProviderError) as caught:
        await collect(make_provider())

    assert API_KEY not in str(caught.value) and "***" in str(caught.value)
    assert API_KEY not in "".join(traceback.format_exception(caught.value))
