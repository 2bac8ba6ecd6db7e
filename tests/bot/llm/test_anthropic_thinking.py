"""Anthropic thinking through the real SDK against the scripted server, which signs the
thinking it sends and refuses, as the API does, a thinking block that comes back edited,
missing where the tool loop needs it, or from another model."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.config import Settings
from bot.domain import ChatMessage, Role, ToolCall, VendorState
from bot.errors import AnswerCutOff, ConfigError, ProviderBadRequest
from bot.llm.anthropic import AnthropicProvider, to_anthropic_messages
from bot.llm.anthropic_thinking import thinking_state
from bot.llm.base import TextDelta, ToolCallsReady, ToolSpec, TurnFinished
from tests.fakes.anthropic_server import (
    ScriptedAnthropicServer,
    anthropic_cut_reply,
    anthropic_text_reply,
    anthropic_tool_reply,
)

WEATHER = ToolSpec(
    "get_weather",
    "Weather.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK = ChatMessage(Role.USER, "weather in Oslo?")
MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
async def make_provider(claude: ScriptedAnthropicServer) -> AsyncIterator[MakeProvider]:
    made: list[AnthropicProvider] = []

    def make(**options: Any) -> AnthropicProvider:
        settings: dict[str, Any] = {
            "api_key": "sk-ant-test",
            "model": "claude-test",
            "base_url": claude.base_url,
            "max_retries": 0,
        }
        provider = AnthropicProvider(**{**settings, **options})
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()


async def collect(
    provider: AnthropicProvider, messages: list[ChatMessage], model: str = ""
) -> list[Any]:
    return [event async for event in provider.stream(messages, [WEATHER], model=model)]


def stored(history: list[ChatMessage], events: list[Any], result: str) -> list[ChatMessage]:
    """The history as the engine stores it after a tool round: the assistant message with
    its vendor state, then the result of each call."""
    calls = next(e.calls for e in events if isinstance(e, ToolCallsReady))
    finished = events[-1]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return [
        *history,
        ChatMessage(Role.ASSISTANT, text, tool_calls=calls, vendor_state=finished.vendor_state),
        *(ChatMessage(Role.TOOL, result, tool_call_id=c.id, name=c.name) for c in calls),
    ]


async def test_thinking_is_not_the_answer_and_comes_back_as_signed_state(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Use the tool."))
    events = await collect(make_provider(), [ASK])
    assert not [e for e in events if isinstance(e, TextDelta)]
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.vendor_state is not None
    assert finished.vendor_state.vendor == "anthropic"
    [block] = finished.vendor_state.data["blocks"]
    assert block["type"] == "thinking" and block["thinking"] == "Use the tool."
    assert claude.signer.valid("claude-test", block)  # the signature as the server made it
    assert finished.vendor_state.data["model"] == "claude-test"
    assert "layout" not in finished.vendor_state.data  # thinking led: no order to keep


async def test_no_thinking_no_state(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_text_reply("Sunny."))
    events = await collect(make_provider(), [ASK])
    assert isinstance(events[-1], TurnFinished) and events[-1].vendor_state is None


@pytest.mark.parametrize("stream", [True, False])
async def test_signed_round_trip_with_thinking_on(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider, stream: bool
) -> None:
    provider = make_provider(thinking="on", stream=stream)
    claude.script(
        anthropic_tool_reply(
            ("get_weather", {"city": "Oslo"}), text="Checking.", thinking="Need the tool."
        ),
        anthropic_text_reply("Sunny in Oslo.", thinking="Answer now."),
        anthropic_text_reply("You're welcome."),
    )
    first = await collect(provider, [ASK])
    history = stored([ASK], first, "sunny")
    second = await collect(provider, history)
    assert "".join(e.text for e in second if isinstance(e, TextDelta)) == "Sunny in Oslo."
    assert claude.rejected == []
    assert claude.requests[0]["thinking"] == {"type": "adaptive"}
    assert claude.requests[1]["thinking"] == {"type": "adaptive"}
    sent = claude.requests[1]["messages"][1]["content"]
    assert [b["type"] for b in sent] == ["thinking", "text", "tool_use"]
    assert sent[0] == first[-1].vendor_state.data["blocks"][0]  # unchanged, signature too
    # A later turn: the finished turn's blocks stay behind (the API needs none, and a
    # model with preserved thinking would check them against a changed system prompt).
    finished = second[-1]
    later = [
        *history,
        ChatMessage(Role.ASSISTANT, "Sunny in Oslo.", vendor_state=finished.vendor_state),
        ChatMessage(Role.USER, "thanks"),
    ]
    await collect(provider, later)
    assert claude.rejected == []
    sent_types = [b["type"] for m in claude.requests[2]["messages"] for b in m["content"]]
    assert "thinking" not in sent_types and claude.requests[2]["thinking"] == {"type": "adaptive"}


async def test_redacted_thinking_goes_back_unchanged(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(thinking="on")
    claude.script(
        anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Hmm.", redacted=1),
        anthropic_text_reply("Sunny."),
    )
    first = await collect(provider, [ASK])
    blocks = first[-1].vendor_state.data["blocks"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking"]
    await collect(provider, stored([ASK], first, "sunny"))
    assert claude.rejected == []
    assert claude.requests[1]["messages"][1]["content"][:2] == blocks


async def test_an_edited_block_is_refused_by_the_server(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    provider = make_provider(thinking="on")
    claude.script(anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Plan."))
    first = await collect(provider, [ASK])
    history = stored([ASK], first, "sunny")
    state = history[1].vendor_state
    assert state is not None
    block = {**state.data["blocks"][0], "thinking": "Plan B."}
    history[1] = ChatMessage(
        Role.ASSISTANT,
        tool_calls=history[1].tool_calls,
        vendor_state=VendorState("anthropic", {**state.data, "blocks": [block]}),
    )
    with pytest.raises(ProviderBadRequest, match="Invalid `signature` in `thinking` block"):
        await collect(provider, history)


async def test_a_loop_without_thinking_is_continued_without_thinking(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """The tool round came from another vendor (its own state), so the Anthropic turn that
    continues it has no thinking block to lead with: no thinking is asked for that call,
    and the next user turn gets thinking again."""
    provider = make_provider(thinking="on")
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    history = [
        ASK,
        ChatMessage(
            Role.ASSISTANT,
            tool_calls=(call,),
            vendor_state=VendorState("deepseek", {"reasoning_content": "I should look."}),
        ),
        ChatMessage(Role.TOOL, "sunny", tool_call_id="call_1", name="get_weather"),
    ]
    claude.script(anthropic_text_reply("Sunny."), anthropic_text_reply("Bye."))
    await collect(provider, history)
    await collect(provider, [*history, ChatMessage(Role.ASSISTANT, "Sunny."), ASK])
    assert claude.rejected == []
    assert "thinking" not in claude.requests[0]
    assert claude.requests[1]["thinking"] == {"type": "adaptive"}
    assert "deepseek" not in str(claude.requests[0]) and "I should look" not in str(
        claude.requests[0]
    )


async def test_blocks_of_another_model_stay_behind(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """Signatures are bound to the model: a channel that switched model sends the earlier
    answer without its blocks (the server would refuse them), and continues an open tool
    loop without thinking."""
    provider = make_provider(thinking="on")
    claude.script(anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Plan."))
    history = stored([ASK], await collect(provider, [ASK]), "sunny")
    claude.script(anthropic_text_reply("Sunny."))
    await collect(provider, history, model="claude-other")
    assert claude.rejected == []
    request = claude.requests[1]
    assert request["model"] == "claude-other" and "thinking" not in request
    assert [b["type"] for b in request["messages"][1]["content"]] == ["tool_use"]


async def test_a_stream_without_message_stop_is_cut_off(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_cut_reply("The weather in Paris is cur", chunk_size=9))
    seen: list[Any] = []

    async def read() -> None:
        async for event in make_provider().stream([ASK], [WEATHER]):
            seen.append(event)

    with pytest.raises(AnswerCutOff, match="without message_stop"):
        await read()
    assert all(isinstance(e, TextDelta) for e in seen)  # never a TurnFinished
    assert "".join(e.text for e in seen) == "The weather in Paris is cur"


async def test_a_stop_reason_without_message_stop_is_finished(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    claude.script(anthropic_cut_reply("Sunny.", keep_delta=True))
    events = await collect(make_provider(), [ASK])
    assert isinstance(events[-1], TurnFinished) and events[-1].finish_reason == "stop"


@pytest.mark.parametrize(
    ("model", "budget", "expected", "max_tokens"),
    [
        ("claude-sonnet-4-5-20250929", None, {"type": "enabled", "budget_tokens": 2048}, 6144),
        ("claude-3-7-sonnet-latest", 3000, {"type": "enabled", "budget_tokens": 3000}, 7096),
        ("claude-opus-4-6", None, {"type": "adaptive"}, 4096),
        ("claude-sonnet-4-6", 1500, {"type": "enabled", "budget_tokens": 1500}, 5596),
        ("claude-opus-4-7", 3000, {"type": "adaptive"}, 4096),
        ("claude-sonnet-5-5", None, {"type": "adaptive"}, 4096),
    ],
)
async def test_thinking_on_is_mapped_per_model_and_accepted(
    claude: ScriptedAnthropicServer,
    make_provider: MakeProvider,
    model: str,
    budget: int | None,
    expected: dict[str, Any],
    max_tokens: int,
) -> None:
    claude.script(anthropic_text_reply("Hi."))
    await collect(make_provider(model=model, thinking="on", thinking_budget=budget), [ASK])
    assert claude.rejected == []
    request = claude.requests[0]
    assert (request["thinking"], request["max_tokens"]) == (expected, max_tokens)


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_auto_and_off_send_no_thinking(make_provider: MakeProvider, mode: str) -> None:
    provider = make_provider(model="claude-sonnet-4-5", thinking=mode, thinking_budget=2000)
    assert "thinking" not in provider.build_request([ASK], [WEATHER])


async def test_thinking_drops_forced_tool_choice_and_temperature_once(
    claude: ScriptedAnthropicServer,
    make_provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_provider(
        model="claude-haiku-4-5",
        thinking="on",
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0.3,
        extra_body={"top_k": 5},
    )
    claude.script(anthropic_text_reply("Hi."), anthropic_text_reply("Hi."))
    with caplog.at_level(logging.WARNING, logger="bot.llm.anthropic"):
        await collect(provider, [ASK])
        await collect(provider, [ASK])
    assert claude.rejected == []
    for request in claude.requests:
        assert request["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
        assert "temperature" not in request and "top_k" not in request
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3  # tool_choice, temperature, top_k: each once
    # Without thinking the same settings go out as set.
    plain = make_provider(tool_choice="required", temperature=0.3).build_request([ASK], [WEATHER])
    assert plain["tool_choice"] == {"type": "any"} and plain["temperature"] == 0.3


def test_a_budget_the_api_would_refuse_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="minimum budget_tokens of 1024"):
        AnthropicProvider.from_settings(
            Settings.load(env_file=None, llm={"thinking": "on", "thinking_budget": 500}).llm
        )
    with pytest.raises(ConfigError, match="must be below PARLEY_LLM_MAX_TOKENS=2000"):
        AnthropicProvider(
            api_key="k", model="m", thinking="on", thinking_budget=2000, max_tokens=2000
        )


def test_history_keeps_thinking_first_and_ignores_other_vendors() -> None:
    mine = VendorState(
        "anthropic",
        {"blocks": [{"type": "redacted_thinking", "data": "opaque"}], "model": "claude-x"},
    )
    theirs = VendorState("dashscope", {"reasoning_content": "secret plan"})
    call = ToolCall("toolu_1", "get_weather", {"city": "Oslo"})
    _, messages = to_anthropic_messages(
        [
            ChatMessage(Role.USER, "hi"),
            ChatMessage(Role.ASSISTANT, "Other vendor.", vendor_state=theirs),
            # Two assistant messages in a row merge; the thinking still leads.
            ChatMessage(Role.ASSISTANT, "Mine.", tool_calls=(call,), vendor_state=mine),
            ChatMessage(Role.TOOL, "sunny", tool_call_id="toolu_1", name="get_weather"),
            # Thinking that led to nothing would end the message: it stays out.
            ChatMessage(Role.ASSISTANT, "", vendor_state=mine),
        ],
        model="claude-x",
    )
    assert [b["type"] for b in messages[1]["content"]] == [
        "redacted_thinking",
        "text",
        "text",
        "tool_use",
    ]
    assert "secret plan" not in str(messages)
    assert len(messages) == 3  # the thinking-only message was left out


def test_interleaved_thinking_keeps_its_order() -> None:
    """A response [thinking, text, tool_use, thinking, tool_use] goes back in that order
    when the stored message still fits the layout, and thinking-first when it does not."""
    first = {"type": "thinking", "thinking": "a", "signature": "s1"}
    second = {"type": "thinking", "thinking": "b", "signature": "s2"}
    order = [("thinking", 0, 0), ("text", 1, 0), ("tool_use", 2, 5), ("thinking", 3, 5)]
    order.append(("tool_use", 4, 5))
    state = thinking_state({0: first, 3: second}, order, 5, "claude-x", "anthropic")
    assert state.data["layout"] == [
        ["thinking", 0],
        ["text", 0, 5],
        ["tool_use", 0],
        ["thinking", 1],
        ["tool_use", 1],
    ]
    calls = (ToolCall("t1", "get_weather", {}), ToolCall("t2", "get_weather", {}))
    message = ChatMessage(Role.ASSISTANT, "Looks", tool_calls=calls, vendor_state=state)
    _, [_, sent, _] = to_anthropic_messages([ASK, message])
    assert [b.get("thinking", b["type"]) for b in sent["content"]] == [
        "a",
        "text",
        "tool_use",
        "b",
        "tool_use",
    ]
    changed = ChatMessage(Role.ASSISTANT, "Changed", tool_calls=calls, vendor_state=state)
    _, [_, sent, _] = to_anthropic_messages([ASK, changed])
    assert [b["type"] for b in sent["content"]] == [
        "thinking",
        "thinking",
        "text",
        "tool_use",
        "tool_use",
    ]


async def test_omitted_thinking_text_still_goes_back_with_its_signature(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """With thinking display "omitted" a block has empty text and only its signature; it
    is complete, and goes back like any other."""
    provider = make_provider(thinking="on")
    claude.script(
        anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking=("",)),
        anthropic_text_reply("Sunny."),
    )
    first = await collect(provider, [ASK])
    [block] = first[-1].vendor_state.data["blocks"]
    assert block["thinking"] == "" and block["signature"]
    await collect(provider, stored([ASK], first, "sunny"))
    assert claude.rejected == []
    assert claude.requests[1]["messages"][1]["content"][0] == block


async def test_the_loop_keeps_the_thinking_it_began_with(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """Manual thinking without interleaving thinks once, at the start of the turn: a
    later round without a block of its own still continues the loop with thinking."""
    provider = make_provider(model="claude-sonnet-4-5", thinking="on")
    claude.script(
        anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Two cities."),
        anthropic_tool_reply(("get_weather", {"city": "Bergen"})),
        anthropic_text_reply("Both sunny."),
    )
    history = stored([ASK], await collect(provider, [ASK]), "sunny")
    history = stored(history, await collect(provider, history), "rain")
    await collect(provider, history)
    assert claude.rejected == []
    assert all(r["thinking"]["type"] == "enabled" for r in claude.requests)
    assert [m["content"][0]["type"] for m in claude.requests[2]["messages"][1::2]] == [
        "thinking",
        "tool_use",
    ]


async def test_a_loop_begun_elsewhere_goes_on_without_any_thinking(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """The loop began on another vendor; a later Anthropic round in it brought thinking.
    The request that continues it sends neither thinking nor that block (the API refuses
    thinking blocks in a turn made without thinking)."""
    provider = make_provider(thinking="on")
    call = ToolCall("call_1", "get_weather", {"city": "Oslo"})
    history = [
        ASK,
        ChatMessage(Role.ASSISTANT, tool_calls=(call,), vendor_state=VendorState("vllm", {})),
        ChatMessage(Role.TOOL, "sunny", tool_call_id="call_1", name="get_weather"),
    ]
    claude.thinks_by_default = True  # this round thinks although none was asked
    claude.script(anthropic_tool_reply(("get_weather", {"city": "Bergen"}), thinking="More."))
    history = stored(history, await collect(provider, history), "rain")
    claude.thinks_by_default = False
    claude.script(anthropic_text_reply("Both fine."))
    await collect(provider, history)
    assert claude.rejected == []
    request = claude.requests[1]
    assert "thinking" not in request
    assert "thinking" not in str(request["messages"])


async def test_blocks_go_back_only_within_their_turn_so_prefix_checks_pass(
    claude: ScriptedAnthropicServer, make_provider: MakeProvider
) -> None:
    """Models with preserved thinking check a block against the system prompt, tools and
    messages before it. Parley's system prompt carries the time, so between turns it
    changes: the finished turn's blocks stay behind and the next turn is accepted, while
    the same block sent after a changed system prompt is refused."""
    claude.checks_prefix = True
    provider = make_provider(thinking="on")
    at_ten = ChatMessage(Role.SYSTEM, "It is now 10:00.")
    claude.script(
        anthropic_tool_reply(("get_weather", {"city": "Oslo"}), thinking="Look."),
        anthropic_text_reply("Sunny."),
        anthropic_text_reply("Bye."),
    )
    history = stored([at_ten, ASK], await collect(provider, [at_ten, ASK]), "sunny")
    await collect(provider, history)  # the loop, same prefix: accepted
    at_eleven = ChatMessage(Role.SYSTEM, "It is now 11:00.")
    next_turn = [
        at_eleven,
        *history[1:],
        ChatMessage(Role.ASSISTANT, "Sunny."),
        ChatMessage(Role.USER, "bye"),
    ]
    await collect(provider, next_turn)
    assert claude.rejected == []
    with pytest.raises(ProviderBadRequest, match="Invalid `signature`"):
        await collect(provider, [at_eleven, *history[1:]])  # the loop under a new prompt
