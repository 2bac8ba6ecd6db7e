"""Thinking models and stream terminators through OpenAICompatProvider, over real HTTP.

The fake refuses as each vendor refuses (`refuse_as`), so a test that passes shows the
request was one the vendor accepts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.config import LLMSettings
from bot.domain import ChatMessage, Role, ToolCall, VendorState
from bot.errors import AnswerCutOff, ProviderBadRequest
from bot.llm.base import StreamEvent, TextDelta, ToolCallsReady, ToolSpec, TurnFinished
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.profiles import PROFILES
from tests.fakes.openai_rules import DASHSCOPE_NOT_STREAMING, DASHSCOPE_TOOL_CHOICE, refusal
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    deltas_reply,
    markup_tool_reply,
    text_reply,
    tool_call_reply,
)

WEATHER = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {}})
Make = Callable[..., OpenAICompatProvider]
CALL = ToolCall("call_1", "get_weather", {"city": "Paris"})


@pytest.fixture
async def make(llm: ScriptedOpenAIServer) -> AsyncIterator[Make]:
    made: list[OpenAICompatProvider] = []

    def build(profile: str, **options: Any) -> OpenAICompatProvider:
        llm.refuse_as(profile)
        options = {"model": "test-model", "max_retries": 0, **options}
        provider = OpenAICompatProvider(
            base_url=llm.base_url, api_key="k", profile=PROFILES[profile], **options
        )
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


async def collect(
    provider: OpenAICompatProvider, messages: list[ChatMessage], tools: list[ToolSpec] | None = None
) -> list[StreamEvent]:
    return [event async for event in provider.stream(messages, tools or [WEATHER])]


def tool_round(state: VendorState | None, text: str = "") -> list[ChatMessage]:
    return [
        ChatMessage(Role.USER, "weather?"),
        ChatMessage(Role.ASSISTANT, text, tool_calls=(CALL,), vendor_state=state),
        ChatMessage(Role.TOOL, "sunny", tool_call_id=CALL.id, name=CALL.name),
    ]


# --- DeepSeek ------------------------------------------------------------------------


async def test_deepseek_non_streamed_tool_round_keeps_its_reasoning(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(tool_call_reply(("get_weather", {}), vendor="deepseek", reasoning="Use the tool."))
    events = await collect(make("deepseek", stream=False), [ChatMessage(Role.USER, "weather?")])
    finished = events[-1]
    assert isinstance(finished, TurnFinished)
    assert finished.vendor_state == VendorState("deepseek", {"reasoning_content": "Use the tool."})


async def test_deepseek_answer_without_tools_keeps_no_state(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(text_reply("42.", vendor="deepseek", reasoning="Think."))
    events = await collect(make("deepseek"), [ChatMessage(Role.USER, "?")])
    assert isinstance(events[-1], TurnFinished) and events[-1].vendor_state is None


async def test_deepseek_reasoner_gets_no_reasoning_on_plain_answers(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    # The older deepseek-reasoner refused reasoning_content on turns without tool calls.
    state = VendorState("deepseek", {"reasoning_content": "Earlier thought."})
    history = [
        *tool_round(state),
        ChatMessage(Role.ASSISTANT, "Sunny.", vendor_state=state),
        ChatMessage(Role.USER, "thanks"),
    ]
    llm.script(text_reply("You're welcome.", vendor="deepseek"))
    await collect(make("deepseek", model="deepseek-reasoner"), history)
    sent = [m for m in llm.requests[0]["messages"] if m["role"] == "assistant"]
    assert sent[0]["reasoning_content"] == "Earlier thought."
    assert "reasoning_content" not in sent[1]


def test_the_fake_refuses_reasoning_on_plain_answers_for_the_reasoner() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello.", "reasoning_content": "old thought"},
        {"role": "user", "content": "again"},
    ]
    refused = refusal({"model": "deepseek-reasoner", "messages": messages}, "deepseek")
    assert refused is not None and refused[0] == 400
    assert refusal({"model": "deepseek-v4-flash", "messages": messages}, "deepseek") is None


async def test_a_round_from_another_vendor_goes_to_deepseek_with_empty_reasoning(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(text_reply("Sunny.", vendor="deepseek"))
    foreign = VendorState("anthropic", {"thinking": "signed"})
    await collect(make("deepseek"), tool_round(foreign))
    [assistant] = [m for m in llm.requests[0]["messages"] if m["role"] == "assistant"]
    assert assistant["reasoning_content"] == ""
    assert "signed" not in str(llm.requests[0])


async def test_deepseek_thinking_off_sends_no_reasoning_and_keeps_forced_tool_choice(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(text_reply("Sunny.", vendor="deepseek"))
    state = VendorState("deepseek", {"reasoning_content": "x"})
    await collect(make("deepseek", thinking="off", tool_choice="required"), tool_round(state))
    request = llm.requests[0]
    assert request["thinking"] == {"type": "disabled"} and request["tool_choice"] == "required"
    assert all("reasoning_content" not in m for m in request["messages"])


async def test_a_budget_deepseek_cannot_take_is_named_once(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        provider = make("deepseek", thinking="on", thinking_budget=1000, tool_choice="required")
    request = provider.build_request([ChatMessage(Role.USER, "hi")], [WEATHER])
    assert "tool_choice" not in request and "thinking_budget" not in request
    assert "tool_choice=required while thinking, a thinking budget: not sent" in caplog.text


# --- DashScope -----------------------------------------------------------------------


async def test_dashscope_non_streaming_says_thinking_is_off(
    llm: ScriptedOpenAIServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    llm.script(text_reply("Sunny.", vendor="dashscope"), text_reply("Sunny.", vendor="dashscope"))
    await collect(make("dashscope", stream=False), [ChatMessage(Role.USER, "?")])
    with caplog.at_level(logging.WARNING):
        provider = make("dashscope", stream=False, thinking="on", tool_choice="required")
    await collect(provider, [ChatMessage(Role.USER, "?")])
    assert [r["enable_thinking"] for r in llm.requests] == [False, False]
    assert llm.requests[1]["tool_choice"] == "required"  # not thinking: accepted
    assert "thinking without streaming" in caplog.text and llm.rejected == []


async def test_dashscope_fake_refuses_what_dashscope_refuses(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    # Sent past the provider's checks (extra_body), to show the fake would catch them.
    plain = make("dashscope", stream=False, extra_body={"enable_thinking": True})
    with pytest.raises(ProviderBadRequest, match="non-streaming"):
        await collect(plain, [ChatMessage(Role.USER, "?")])
    forced = make("dashscope", extra_body={"tool_choice": "required"})
    with pytest.raises(ProviderBadRequest, match="tool_choice parameter"):
        await collect(forced, [ChatMessage(Role.USER, "?")])
    assert llm.rejected == [DASHSCOPE_NOT_STREAMING, DASHSCOPE_TOOL_CHOICE]


async def test_dashscope_thinking_budget_and_no_json_mode(
    llm: ScriptedOpenAIServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    llm.script(text_reply("{}", vendor="dashscope"))
    with caplog.at_level(logging.WARNING):
        provider = make(
            "dashscope",
            model="qwen3.5-27b",  # a model that demands a budget with thinking
            thinking="on",
            thinking_budget=4096,
            extra_body={"response_format": {"type": "json_object"}},
        )
    await collect(provider, [ChatMessage(Role.USER, "json please")])
    request = llm.requests[0]
    assert request["enable_thinking"] is True and request["thinking_budget"] == 4096
    assert "response_format" not in request
    assert "JSON mode (response_format) while thinking" in caplog.text


async def test_dashscope_required_tool_choice_goes_when_thinking_is_off(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(tool_call_reply(("get_weather", {}), vendor="dashscope"))
    await collect(
        make("dashscope", thinking="off", tool_choice="required"), [ChatMessage(Role.USER, "?")]
    )
    assert llm.requests[0]["tool_choice"] == "required"
    assert llm.requests[0]["enable_thinking"] is False


# --- vLLM, Ollama, settings ----------------------------------------------------------


async def test_vllm_think_tags_and_markup_together(llm: ScriptedOpenAIServer, make: Make) -> None:
    reply = markup_tool_reply(
        ("get_weather", {"city": "Oslo"}), text="<think>Tool.</think>Checking."
    )
    llm.script(reply)
    events = await collect(make("vllm"), [ChatMessage(Role.USER, "weather?")])
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert shown.strip() == "Checking."
    [ready] = [e for e in events if isinstance(e, ToolCallsReady)]
    assert [c.arguments for c in ready.calls] == [{"city": "Oslo"}]


async def test_non_streamed_markup_and_object_arguments(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(
        markup_tool_reply(("get_time", {"tz": "UTC"}), vendor="ollama"),
        tool_call_reply(("get_weather", {"city": "Oslo"}), vendor="ollama", object_arguments=True),
    )
    provider = make("ollama", stream=False)
    for expected in ({"tz": "UTC"}, {"city": "Oslo"}):
        events = await collect(provider, [ChatMessage(Role.USER, "?")])
        assert not any(isinstance(e, TextDelta) and "tool_call" in e.text for e in events)
        [ready] = [e for e in events if isinstance(e, ToolCallsReady)]
        assert [c.arguments for c in ready.calls] == [expected]


def test_thinking_settings_reach_the_provider() -> None:
    settings = LLMSettings(
        _env_file=None,  # type: ignore[call-arg]
        OPENAI_BASE_URL="https://api.deepseek.com",
        PARLEY_LLM_THINKING="off",
    )
    request = OpenAICompatProvider.from_settings(settings).build_request(
        [ChatMessage(Role.USER, "hi")], []
    )
    assert request["thinking"] == {"type": "disabled"}


# --- terminators ---------------------------------------------------------------------


@pytest.mark.parametrize(("finish_reason", "done"), [("stop", True), ("stop", False), (None, True)])
async def test_either_terminator_completes_a_stream(
    llm: ScriptedOpenAIServer, make: Make, finish_reason: str | None, done: bool
) -> None:
    llm.script(deltas_reply({"content": "Whole."}, finish_reason=finish_reason, done=done))
    events = await collect(make("openai"), [ChatMessage(Role.USER, "?")])
    assert events[0] == TextDelta("Whole.") and isinstance(events[-1], TurnFinished)


async def test_a_stream_cut_after_tool_call_deltas_runs_nothing(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(
        deltas_reply(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}]},
            finish_reason=None,
            done=False,
        )
    )
    with pytest.raises(AnswerCutOff) as cut:
        await collect(make("openai"), [ChatMessage(Role.USER, "?")])
    assert cut.value.user_message == "The model's answer was cut off. Please ask again."
