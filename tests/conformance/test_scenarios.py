"""The conformance scenarios, replayed for every vendor profile and the Anthropic API.

Each test drives the real provider (real SDK, real HTTP) against a scripted server that
streams in that vendor's shape, and checks the Provider contract: `TextDelta`s, at most
one `ToolCallsReady`, one `TurnFinished`, and a valid next request carrying the tool
results. `python -m tests.conformance.table` turns the results into docs/providers.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from bot.domain import ChatMessage, Role, ToolCall, ToolResult, Usage
from bot.llm.base import (
    REFUSED_TEXT,
    Provider,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from tests.conformance.conftest import Vendor
from tests.fakes.anthropic_server import anthropic_text_reply

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
TIME = ToolSpec(
    "get_time",
    "Current time in a timezone.",
    {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
)
TOOLS = [WEATHER, TIME]
SYSTEM = ChatMessage(Role.SYSTEM, "You are a test.")


@dataclass
class Round:
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    finished: list[TurnFinished] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    @property
    def finish(self) -> TurnFinished:
        assert len(self.finished) == 1
        return self.finished[0]


async def run(provider: Provider, history: Sequence[ChatMessage]) -> Round:
    """One model call; checks the event order of the Provider contract on the way."""
    result = Round()
    async for event in provider.stream(history, TOOLS):
        if isinstance(event, TextDelta):
            assert not result.calls and not result.finished, "text after calls or finish"
            result.text += event.text
            result.order.append("text")
        elif isinstance(event, ToolCallsReady):
            assert not result.calls and not result.finished, "a second ToolCallsReady"
            result.calls = event.calls
            result.order.append("calls")
        else:
            assert isinstance(event, TurnFinished)
            result.finished.append(event)
            result.order.append("finish")
    assert result.order[-1:] == ["finish"] and result.order.count("finish") == 1
    return result


def answered(
    history: list[ChatMessage], round_: Round, results: Sequence[ToolResult]
) -> list[ChatMessage]:
    """The history after the engine stored the round and its tool results."""
    return [
        *history,
        ChatMessage(Role.ASSISTANT, round_.text, tool_calls=round_.calls),
        *(
            ChatMessage(
                Role.TOOL, r.content, tool_call_id=r.call_id, name=r.name, is_error=r.is_error
            )
            for r in results
        ),
    ]


def ok(call: ToolCall, content: str) -> ToolResult:
    return ToolResult(call.id, call.name, content)


async def test_plain_answer(vendor: Vendor) -> None:
    vendor.script(vendor.text("Hello there, how can I help you today?", chunk_size=4))
    result = await run(vendor.provider, [SYSTEM, ChatMessage(Role.USER, "hi")])
    assert result.text == "Hello there, how can I help you today?"
    assert result.calls == () and result.finish.finish_reason == "stop"
    assert result.order.count("text") > 3  # streamed, not buffered


async def test_reasoning_is_kept_out_of_the_answer(vendor: Vendor) -> None:
    if vendor.name == "anthropic":
        vendor.script(anthropic_text_reply("42.", thinking="Let me think hard about it."))
    else:
        vendor.script(vendor.text("42.", reasoning="Let me think hard about it."))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "answer?")])
    assert result.text == "42."


async def test_one_tool(vendor: Vendor) -> None:
    history = [SYSTEM, ChatMessage(Role.USER, "weather in Paris?")]
    vendor.script(vendor.tools(("get_weather", {"city": "Paris"}), text="Checking."))
    first = await run(vendor.provider, history)
    [call] = first.calls
    assert (call.name, call.arguments, call.arguments_error) == (
        "get_weather",
        {"city": "Paris"},
        "",
    )
    assert call.id and first.text == "Checking."
    assert first.finish.finish_reason == "tool_calls"

    vendor.script(vendor.text("It is sunny in Paris."))
    second = await run(vendor.provider, answered(history, first, [ok(call, "sunny, 21 C")]))
    assert second.text == "It is sunny in Paris."
    assert vendor.tool_results(vendor.requests[1]) == [(call.id, "sunny, 21 C", False)]
    assert vendor.tool_call_ids(vendor.requests[1]) == [call.id]


async def test_parallel_tools(vendor: Vendor) -> None:
    history = [ChatMessage(Role.USER, "weather in Paris and time in Tokyo?")]
    vendor.script(
        vendor.tools(("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Asia/Tokyo"}))
    )
    first = await run(vendor.provider, history)
    assert [(c.name, c.arguments) for c in first.calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"timezone": "Asia/Tokyo"}),
    ]
    assert len({c.id for c in first.calls}) == 2
    # Qwen answers one call per response unless asked: its profile asks.
    sent = vendor.requests[0].get("parallel_tool_calls")
    assert sent is (True if vendor.name == "dashscope" else None)

    vendor.script(vendor.text("Sunny; it is 9 pm."))
    results = [ok(first.calls[0], "sunny"), ok(first.calls[1], "21:00")]
    await run(vendor.provider, answered(history, first, results))
    assert [r[:2] for r in vendor.tool_results(vendor.requests[1])] == [
        (first.calls[0].id, "sunny"),
        (first.calls[1].id, "21:00"),
    ]


async def test_multi_round(vendor: Vendor) -> None:
    history: list[ChatMessage] = [SYSTEM, ChatMessage(Role.USER, "plan my evening")]
    vendor.script(
        vendor.tools(("get_time", {"timezone": "Europe/Paris"})),
        vendor.tools(("get_weather", {"city": "Paris"})),
        vendor.text("Go for a walk at 8."),
    )
    first = await run(vendor.provider, history)
    history = answered(history, first, [ok(first.calls[0], "19:00")])
    second = await run(vendor.provider, history)
    assert [c.name for c in second.calls] == ["get_weather"]
    history = answered(history, second, [ok(second.calls[0], "clear sky")])
    third = await run(vendor.provider, history)
    assert third.text == "Go for a walk at 8." and third.calls == ()
    last = vendor.requests[2]
    assert [r[:2] for r in vendor.tool_results(last)] == [
        (first.calls[0].id, "19:00"),
        (second.calls[0].id, "clear sky"),
    ]


async def test_arguments_split_across_chunks(vendor: Vendor) -> None:
    arguments = {"city": "Saint-Rémy-de-Provence, France"}
    vendor.script(vendor.tools(("get_weather", arguments), split_arguments=3))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "weather?")])
    [call] = result.calls
    assert call.arguments == arguments


async def test_malformed_arguments(vendor: Vendor) -> None:
    history = [ChatMessage(Role.USER, "weather?")]
    vendor.script(vendor.tools(("get_weather", '{"city": "Par')))
    first = await run(vendor.provider, history)
    [call] = first.calls
    assert call.arguments is None and "not valid JSON" in call.arguments_error
    assert call.raw_arguments == '{"city": "Par'

    # The error goes back to the model and the history stays acceptable to the vendor.
    vendor.script(vendor.text("Sorry, which city?"))
    error = ToolResult(call.id, call.name, "arguments were not JSON", is_error=True)
    second = await run(vendor.provider, answered(history, first, [error]))
    assert second.text == "Sorry, which city?"
    assert [r[0] for r in vendor.tool_results(vendor.requests[1])] == [call.id]


async def test_refusal(vendor: Vendor) -> None:
    vendor.script(vendor.refusal("I can't help with that."))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "something bad")])
    assert result.text == "I can't help with that."
    assert result.calls == () and result.finish.finish_reason == vendor.refusal_finish


async def test_usage(vendor: Vendor) -> None:
    vendor.script(vendor.text("Counted.", usage=(17, 9)))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "count")])
    assert result.finish.usage == Usage(17, 9)
    vendor.script(vendor.tools(("get_time", {"timezone": "UTC"}), usage=(30, 12)))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "time")])
    assert result.finish.usage == Usage(30, 12)


async def test_think_tags_in_content(vendor: Vendor) -> None:
    if vendor.name not in ("vllm", "ollama"):
        pytest.skip("this vendor sends reasoning in its own field, never in the content")
    vendor.script(vendor.text("<think>The user wants a number.</think>\n\n42.", chunk_size=3))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "answer?")])
    assert result.text == "42."


async def test_silent_refusal_still_answers(vendor: Vendor) -> None:
    if vendor.name == "anthropic":
        vendor.script(anthropic_text_reply("", stop_reason="refusal"))
    elif vendor.name in ("dashscope", "deepseek"):
        vendor.script(vendor.text("", finish_reason="content_filter"))
    else:
        pytest.skip("this vendor declines in words, never with an empty filtered answer")
    result = await run(vendor.provider, [ChatMessage(Role.USER, "something bad")])
    assert result.text == REFUSED_TEXT
    assert result.finish.finish_reason == vendor.refusal_finish
