"""The conformance scenarios, replayed for every vendor profile and the Anthropic API.

Each test drives the real provider (real SDK, real HTTP) against a scripted server that
streams in that vendor's shape and refuses what that vendor refuses, and checks the
Provider contract: `TextDelta`s, at most one `ToolCallsReady`, one `TurnFinished`, and a
valid next request carrying the tool results (and any state the vendor wants back, as
the engine stores it). A scenario that does not apply to a vendor is skipped with the
reason. `python -m tests.conformance.table` turns the results into docs/providers.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.domain import ChatMessage, Role, ToolCall, ToolResult, Usage, VendorState
from bot.errors import AnswerCutOff, ProviderBadRequest
from bot.llm.anthropic import AnthropicProvider
from bot.llm.base import (
    COMPLETE,
    FILTERED,
    REFUSED,
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.llm.profiles import GENERIC, PROFILES
from tests.conformance.conftest import Vendor
from tests.fakes.anthropic_server import (
    ScriptedAnthropicServer,
    anthropic_cut_reply,
    anthropic_text_reply,
    anthropic_tool_reply,
)
from tests.fakes.openai_rules import DEEPSEEK_REASONING_MISSING
from tests.fakes.openai_server import markup_tool_reply

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
    reasoning: str = ""

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
        elif isinstance(event, ReasoningDelta):
            assert not result.calls and not result.finished, "reasoning after calls or finish"
            result.reasoning += event.text
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
        ChatMessage(
            Role.ASSISTANT,
            round_.text,
            tool_calls=round_.calls,
            vendor_state=round_.finish.vendor_state,
        ),
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
    if vendor.name in ("gemini", "mistral"):
        pytest.skip("this vendor streams no reasoning field in its compatible chat API")
    if vendor.name == "anthropic":
        vendor.script(anthropic_text_reply("42.", thinking="Let me think hard about it."))
    else:
        vendor.script(vendor.text("42.", reasoning="Let me think hard about it."))
    result = await run(vendor.provider, [ChatMessage(Role.USER, "answer?")])
    assert result.text == "42."
    # OpenAI sends none; vLLM and MiniMax inline it as <think> tags, never shown.
    if vendor.name not in ("openai", "vllm", "minimax"):
        assert result.reasoning == "Let me think hard about it."  # shown as thinking


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
    # Words alone (vLLM, Ollama) are an answer; a flagged refusal or filter is not one.
    expected = {"refusal": REFUSED, "content_filter": FILTERED}.get(vendor.refusal_finish)
    assert result.finish.outcome == (expected or COMPLETE)


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


async def test_silent_refusal_is_not_an_answer(vendor: Vendor) -> None:
    if vendor.name == "anthropic":
        vendor.script(anthropic_text_reply("", stop_reason="refusal"))
    elif vendor.name in ("dashscope", "deepseek", "gemini"):
        vendor.script(vendor.text("", finish_reason="content_filter"))
    else:
        pytest.skip("this vendor declines in words, never with an empty filtered answer")
    result = await run(vendor.provider, [ChatMessage(Role.USER, "something bad")])
    # No made-up words: the engine tells the user, in their language
    # (tests/bot/turn/test_finishes.py).
    assert result.text == "" and result.finish.finish_reason == vendor.refusal_finish
    assert result.finish.outcome == (REFUSED if vendor.name == "anthropic" else FILTERED)


# -- Anthropic only: signed thinking in tool loops, cut-off streams ----------------------
#
# The Messages API wants a tool loop's last assistant turn back with its thinking blocks
# first, signatures unchanged; the scripted server signs what it sends and refuses the
# rest. Each scenario drives a provider with PARLEY_LLM_THINKING=on over two user turns.


def anthropic_only(vendor: Vendor) -> AnthropicProvider:
    if vendor.name != "anthropic":
        pytest.skip("signed thinking blocks and message_stop are the Messages API's")
    assert isinstance(vendor.server, ScriptedAnthropicServer)
    vendor.server.checks_prefix = True  # as models with preserved thinking do
    return AnthropicProvider(
        api_key="sk-ant-test",
        model="claude-test",
        base_url=vendor.server.base_url,
        max_retries=0,
        thinking="on",
    )


def refused(vendor: Vendor) -> list[str]:
    """Why the scripted Anthropic server refused requests (400), in order."""
    assert isinstance(vendor.server, ScriptedAnthropicServer)
    return vendor.server.rejected


async def test_anthropic_signed_thinking_round_trip(vendor: Vendor) -> None:
    provider = anthropic_only(vendor)
    try:
        history = [SYSTEM, ChatMessage(Role.USER, "weather in Paris?")]
        vendor.script(
            anthropic_tool_reply(("get_weather", {"city": "Paris"}), thinking="Look it up."),
            anthropic_text_reply("Sunny in Paris.", thinking="Now answer."),
            anthropic_tool_reply(("get_time", {"timezone": "Europe/Paris"}), thinking="Time."),
            anthropic_text_reply("It is 9 pm."),
        )
        first = await run(provider, history)
        history = answered(history, first, [ok(first.calls[0], "sunny")])
        second = await run(provider, history)
        assert second.text == "Sunny in Paris." and first.text == ""
        # The second user turn, with a tool round of its own.
        history = [
            *history,
            ChatMessage(Role.ASSISTANT, second.text, vendor_state=second.finish.vendor_state),
            ChatMessage(Role.USER, "and the time?"),
        ]
        third = await run(provider, history)
        fourth = await run(provider, answered(history, third, [ok(third.calls[0], "21:00")]))
        assert fourth.text == "It is 9 pm."
        assert refused(vendor) == []
        assert all(r["thinking"] == {"type": "adaptive"} for r in vendor.requests)
        loop = vendor.requests[3]["messages"][-2]["content"]
        assert [b["type"] for b in loop] == ["thinking", "tool_use"]
    finally:
        await provider.aclose()


async def test_anthropic_tampered_or_missing_thinking(vendor: Vendor) -> None:
    provider = anthropic_only(vendor)
    try:
        history = [ChatMessage(Role.USER, "weather in Paris?")]
        vendor.script(anthropic_tool_reply(("get_weather", {"city": "Paris"}), thinking="Plan."))
        first = await run(provider, history)
        state = first.finish.vendor_state
        assert state is not None
        tampered = [{**state.data["blocks"][0], "signature": "Zm9yZ2Vk"}]
        forged_state = VendorState("anthropic", {**state.data, "blocks": tampered})
        forged = Round(
            first.text, first.calls, [TurnFinished("tool_calls", Usage(), "", forged_state)]
        )
        with pytest.raises(ProviderBadRequest, match="Invalid `signature`"):
            await run(provider, answered(history, forged, [ok(first.calls[0], "sunny")]))
        # Without the block (state lost), Parley does not send what the server refuses:
        # the loop is continued without thinking, and the next turn thinks again.
        vendor.script(anthropic_text_reply("Sunny."), anthropic_text_reply("Bye."))
        stateless = Round(first.text, first.calls, [TurnFinished("tool_calls", Usage())])
        lost = answered(history, stateless, [ok(first.calls[0], "sunny")])
        await run(provider, lost)
        await run(
            provider, [*lost, ChatMessage(Role.ASSISTANT, "Sunny."), ChatMessage(Role.USER, "bye")]
        )
        assert refused(vendor) == ["messages.1.content.0: Invalid `signature` in `thinking` block"]
        assert "thinking" not in vendor.requests[2] and "thinking" in vendor.requests[3]
    finally:
        await provider.aclose()


async def test_anthropic_redacted_thinking_passed_back(vendor: Vendor) -> None:
    provider = anthropic_only(vendor)
    try:
        history = [ChatMessage(Role.USER, "weather in Paris?")]
        vendor.script(
            anthropic_tool_reply(("get_weather", {"city": "Paris"}), redacted=1),
            anthropic_text_reply("Sunny."),
            anthropic_text_reply("Bye."),
        )
        first = await run(provider, history)
        history = answered(history, first, [ok(first.calls[0], "sunny")])
        second = await run(provider, history)
        await run(
            provider,
            [
                *history,
                ChatMessage(Role.ASSISTANT, second.text, vendor_state=second.finish.vendor_state),
                ChatMessage(Role.USER, "bye"),
            ],
        )
        assert refused(vendor) == []
        sent = vendor.requests[1]["messages"][1]["content"]
        assert sent[0]["type"] == "redacted_thinking"
        assert sent[0] == first.finish.vendor_state.data["blocks"][0]
    finally:
        await provider.aclose()


async def test_anthropic_history_from_another_vendor(vendor: Vendor) -> None:
    """A conversation that started on an OpenAI-compatible vendor, stopped in the middle of
    a tool loop: its reasoning state is not sent, and the loop finishes without thinking."""
    provider = anthropic_only(vendor)
    try:
        call = ToolCall("call_0", "get_weather", {"city": "Paris"})
        history = [
            SYSTEM,
            ChatMessage(Role.USER, "weather in Paris?"),
            ChatMessage(
                Role.ASSISTANT,
                tool_calls=(call,),
                vendor_state=VendorState("deepseek", {"reasoning_content": "Use the tool."}),
            ),
            ChatMessage(Role.TOOL, "sunny", tool_call_id=call.id, name=call.name),
        ]
        vendor.script(anthropic_text_reply("Sunny."), anthropic_text_reply("Bye."))
        first = await run(provider, history)
        await run(
            provider,
            [*history, ChatMessage(Role.ASSISTANT, first.text), ChatMessage(Role.USER, "bye")],
        )
        assert refused(vendor) == []
        assert "thinking" not in vendor.requests[0] and "thinking" in vendor.requests[1]
        assert "Use the tool." not in str(vendor.requests)
    finally:
        await provider.aclose()


async def test_anthropic_stream_cut_before_message_stop(vendor: Vendor) -> None:
    provider = anthropic_only(vendor)
    try:
        vendor.script(anthropic_cut_reply("The weather in Paris is cur"))
        seen: list[str] = []

        async def read() -> None:
            async for event in provider.stream([ChatMessage(Role.USER, "weather?")], TOOLS):
                assert isinstance(event, TextDelta | ReasoningDelta)
                if isinstance(event, TextDelta):
                    seen.append(event.text)

        with pytest.raises(AnswerCutOff):
            await read()
        assert "".join(seen) == "The weather in Paris is cur"
        # The cut answer is never stored, so the next turn's history is as before.
        vendor.script(anthropic_text_reply("Sunny."))
        again = await run(provider, [ChatMessage(Role.USER, "weather?")])
        assert again.text == "Sunny." and refused(vendor) == []
    finally:
        await provider.aclose()


def only(vendor: Vendor, names: tuple[str, ...], reason: str) -> None:
    if vendor.name not in names:
        pytest.skip(reason)


def assistant_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "assistant"]


async def test_reasoning_goes_back_after_a_tool_round(vendor: Vendor) -> None:
    only(vendor, ("deepseek",), "only DeepSeek's thinking mode needs a tool round's reasoning back")
    assert vendor.variant is not None
    history = [SYSTEM, ChatMessage(Role.USER, "weather in Paris?")]
    thought = "The user wants the weather in Paris: call get_weather."
    vendor.script(vendor.tools(("get_weather", {"city": "Paris"}), reasoning=thought))
    first = await run(vendor.provider, history)
    assert first.text == ""  # the reasoning is never the answer
    assert first.finish.vendor_state == VendorState("deepseek", {"reasoning_content": thought})
    after_tools = answered(history, first, [ok(first.calls[0], "sunny")])

    # Without it (what a provider that drops reasoning sends) DeepSeek answers 400.
    dropping = vendor.variant(profile=GENERIC)
    with pytest.raises(ProviderBadRequest, match="reasoning_content"):
        await run(dropping, after_tools)
    assert vendor.server.rejected == [DEEPSEEK_REASONING_MISSING]

    # With it, the tool loop goes on; and the next turn still carries it.
    vendor.script(vendor.text("It is sunny in Paris."))
    second = await run(vendor.provider, after_tools)
    history = [
        *after_tools,
        ChatMessage(Role.ASSISTANT, second.text, vendor_state=second.finish.vendor_state),
        ChatMessage(Role.USER, "and tomorrow?"),
    ]
    vendor.script(vendor.text("Sunny again."))
    third = await run(vendor.provider, history)
    assert third.text == "Sunny again."
    for request in vendor.requests[-2:]:
        carried = [m.get("reasoning_content") for m in assistant_messages(request)]
        # The tool round's reasoning goes back; the plain answer carries none.
        assert carried[0] == thought and carried[1:] in ([], [None])
    assert vendor.server.rejected == [DEEPSEEK_REASONING_MISSING]


async def test_parallel_calls_at_one_index_stay_apart(vendor: Vendor) -> None:
    only(vendor, ("ollama",), "this vendor numbers each call with its own index")
    history = [ChatMessage(Role.USER, "weather in Paris and Zürich?")]
    vendor.script(
        vendor.tools(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Zürich"}))
    )
    raw = vendor.requests
    first = await run(vendor.provider, history)
    assert [c.arguments for c in first.calls] == [{"city": "Paris"}, {"city": "Zürich"}]
    assert first.finish.finish_reason == "tool_calls"  # Ollama said "stop"
    ids = [c.id for c in first.calls]
    assert len(set(ids)) == 2
    vendor.script(vendor.text("Sunny in both."))
    results = [ok(first.calls[0], "sunny"), ok(first.calls[1], "sunny too")]
    second = await run(vendor.provider, answered(history, first, results))
    assert second.text == "Sunny in both."
    assert vendor.tool_call_ids(raw[1]) == ids
    assert [r[0] for r in vendor.tool_results(raw[1])] == ids


async def test_object_arguments(vendor: Vendor) -> None:
    only(vendor, ("ollama",), "this vendor sends arguments as a JSON string")
    history = [ChatMessage(Role.USER, "weather?")]
    vendor.script(vendor.tools(("get_weather", {"city": "Paris"}), object_arguments=True))
    first = await run(vendor.provider, history)
    [call] = first.calls
    assert (call.arguments, call.arguments_error) == ({"city": "Paris"}, "")
    vendor.script(vendor.text("Sunny."))
    await run(vendor.provider, answered(history, first, [ok(call, "sunny")]))
    # Sent back as the string every vendor expects (the fake refuses anything else).
    [message] = assistant_messages(vendor.requests[1])
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}


async def test_arguments_end_on_the_finishing_chunk(vendor: Vendor) -> None:
    only(vendor, ("vllm",), "only vLLM's hermes parser sends arguments on the finishing chunk")
    vendor.script(
        vendor.tools(
            ("get_weather", {"city": "Paris, France"}), split_arguments=6, rest_on_finish=True
        )
    )
    result = await run(vendor.provider, [ChatMessage(Role.USER, "weather?")])
    [call] = result.calls
    assert call.arguments == {"city": "Paris, France"}


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "unclosed"])
async def test_tool_call_markup_in_the_text(vendor: Vendor, closed: bool) -> None:
    only(vendor, ("vllm", "ollama"), "this vendor's server always parses tool calls itself")
    history = [ChatMessage(Role.USER, "weather in Paris?")]
    vendor.script(
        markup_tool_reply(
            ("get_weather", {"city": "Paris"}),
            text="Let me check.",
            vendor=vendor.name,
            close=closed,
        )
    )
    first = await run(vendor.provider, history)
    assert first.text.strip() == "Let me check." and "tool_call" not in first.text
    [call] = first.calls
    assert call.name == "get_weather" and call.id
    assert first.finish.finish_reason == "tool_calls"
    if closed:
        assert call.arguments == {"city": "Paris"}
    else:  # a call cut short is still a call: the model reads why it failed
        assert call.arguments is None and "not closed" in call.arguments_error
    vendor.script(vendor.text("Sunny."))
    await run(vendor.provider, answered(history, first, [ok(call, "sunny")]))
    assert vendor.tool_call_ids(vendor.requests[1]) == [call.id]


async def test_stream_cut_without_terminator(vendor: Vendor) -> None:
    if vendor.cut is None:
        pytest.skip("scripted with this vendor's own scenarios")
    history = [ChatMessage(Role.USER, "weather in Paris?")]
    vendor.script(vendor.cut("The weather in Paris is cur"))
    shown: list[str] = []

    async def read() -> None:
        async for event in vendor.provider.stream(history, TOOLS):
            assert isinstance(event, TextDelta | ReasoningDelta), "a cut answer never finishes"
            if isinstance(event, TextDelta):
                shown.append(event.text)

    with pytest.raises(AnswerCutOff):
        await read()
    assert "".join(shown) == "The weather in Paris is cur"
    # Nothing of it is stored, so the same history is asked again, and answered.
    vendor.script(vendor.text("It is sunny in Paris."))
    again = await run(vendor.provider, history)
    assert again.text == "It is sunny in Paris."


async def test_vendor_switch_drops_foreign_state(vendor: Vendor) -> None:
    secret = "reasoning another vendor wrote"
    foreign = VendorState(
        "anthropic" if vendor.name == "deepseek" else "deepseek",
        {"reasoning_content": secret, "thinking": [{"signature": secret}]},
    )
    call = ToolCall("call_from_before", "get_weather", {"city": "Paris"})
    history = [
        ChatMessage(Role.USER, "weather?"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(call,), vendor_state=foreign),
        ChatMessage(Role.TOOL, "sunny", tool_call_id=call.id, name=call.name),
        ChatMessage(Role.ASSISTANT, "Sunny.", vendor_state=foreign),
        ChatMessage(Role.USER, "and in Rome?"),
    ]
    vendor.script(vendor.text("Sunny in Rome too."))
    result = await run(vendor.provider, history)
    assert result.text == "Sunny in Rome too."
    assert secret not in json.dumps(vendor.requests[0], ensure_ascii=False)


THINKING_FIELDS: dict[str, dict[str, Any]] = {
    "deepseek": {
        "on": {"thinking": {"type": "enabled"}},
        "off": {"thinking": {"type": "disabled"}},
    },
    "dashscope": {"on": {"enable_thinking": True}, "off": {"enable_thinking": False}},
    "vllm": {
        "on": {"chat_template_kwargs": {"enable_thinking": True, "thinking": True}},
        "off": {"chat_template_kwargs": {"enable_thinking": False, "thinking": False}},
    },
    "ollama": {"on": {"reasoning_effort": "medium"}, "off": {"reasoning_effort": "none"}},
    "kimi": {"on": {"thinking": {"type": "enabled"}}, "off": {"thinking": {"type": "disabled"}}},
    "glm": {"on": {"thinking": {"type": "enabled"}}, "off": {"thinking": {"type": "disabled"}}},
    "ark": {"on": {"thinking": {"type": "enabled"}}, "off": {"thinking": {"type": "disabled"}}},
    "siliconflow": {
        "on": {"enable_thinking": True, "thinking_budget": 2048},
        "off": {"enable_thinking": False},
    },
    # With a budget Gemini gets it in Google's own block, never with reasoning_effort.
    "gemini": {
        "on": {"extra_body": {"google": {"thinking_config": {"thinking_budget": 2048}}}},
        "off": {"reasoning_effort": "none"},
    },
}


@pytest.mark.parametrize("mode", ["on", "off"])
async def test_thinking_switch(vendor: Vendor, mode: str) -> None:
    if vendor.variant is None:
        pytest.skip("scripted with this vendor's own scenarios")
    # A forced tool choice too: vendors that refuse it while thinking do not get it then.
    provider = vendor.variant(thinking=mode, thinking_budget=2048, tool_choice="required")
    vendor.script(vendor.text("42.", reasoning="Thinking." if mode == "on" else ""))
    result = await run(provider, [ChatMessage(Role.USER, "answer?")])
    assert result.text == "42." and vendor.server.rejected == []
    [request] = vendor.requests
    for key, value in THINKING_FIELDS.get(vendor.name, {}).get(mode, {}).items():
        assert request[key] == value
    refused_while_thinking = PROFILES[vendor.name].thinks_by_default and mode == "on"
    accepted = "required" in PROFILES[vendor.name].tool_choice  # Ollama takes only auto
    kept = accepted and not refused_while_thinking
    assert request.get("tool_choice") == ("required" if kept else None)


async def test_thought_signatures_go_back(vendor: Vendor) -> None:
    only(vendor, ("gemini",), "only Gemini signs its function calls")
    assert vendor.variant is not None
    history = [SYSTEM, ChatMessage(Role.USER, "weather in Paris and Rome?")]
    vendor.script(
        vendor.tools(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"}))
    )
    first = await run(vendor.provider, history)
    assert len(first.calls) == 2 and first.finish.finish_reason == "tool_calls"
    state = first.finish.vendor_state
    assert state is not None and state.vendor == "gemini"
    # Gemini signs the first call of a parallel set only.
    [(position, signature)] = state.data["signatures"].items()
    assert position == "0" and signature in vendor.server.issued_signatures
    results = [ok(first.calls[0], "sunny"), ok(first.calls[1], "rainy")]
    after_tools = answered(history, first, results)

    # Without it Gemini refuses the tool loop (and answers with a JSON array).
    dropping = vendor.variant(profile=GENERIC)
    with pytest.raises(ProviderBadRequest, match="missing a thought_signature"):
        await run(dropping, after_tools)

    vendor.script(vendor.text("Sunny in Paris, rainy in Rome."))
    second = await run(vendor.provider, after_tools)
    assert second.text == "Sunny in Paris, rainy in Rome."
    [assistant] = assistant_messages(vendor.requests[-1])
    sent = [c.get("extra_content") for c in assistant["tool_calls"]]
    assert sent == [{"google": {"thought_signature": signature}}, None]

    # The next turn carries it too; an unsigned round (another vendor's) gets the fallback.
    foreign = ChatMessage(
        Role.ASSISTANT, "", tool_calls=(ToolCall("call_x", "get_time", {"timezone": "UTC"}),)
    )
    history = [
        *after_tools,
        ChatMessage(Role.ASSISTANT, second.text),
        ChatMessage(Role.USER, "and the time?"),
        foreign,
        ChatMessage(Role.TOOL, "12:00", tool_call_id="call_x", name="get_time"),
    ]
    vendor.script(vendor.text("Noon."))
    third = await run(vendor.provider, history)
    assert third.text == "Noon."
    first_calls = [
        m["tool_calls"][0] for m in assistant_messages(vendor.requests[-1]) if m.get("tool_calls")
    ]
    assert [c["extra_content"]["google"]["thought_signature"] for c in first_calls] == [
        signature,
        "skip_thought_signature_validator",
    ]
