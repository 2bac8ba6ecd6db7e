"""What the vendors added in December 2026 require of a tool loop, each against a fake
that refuses what the vendor refuses (tests/fakes/openai_rules.py), two turns each: the
second proves the history the first left is still one the vendor takes. A provider built
with the generic profile shows the refusal Parley avoids."""

from __future__ import annotations

import json

import pytest

from bot.domain import ChatMessage, Role, ToolCall
from bot.errors import ProviderBadRequest
from bot.llm.base import Provider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.profiles import GENERIC
from tests.conformance.conftest import Vendor
from tests.conformance.test_scenarios import SYSTEM, answered, assistant_messages, ok, run
from tests.fakes.openai_rules import KIMI_REASONING_MISSING, OPENROUTER_DETAILS_MISSING
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply

THOUGHT = "The user wants Paris: call get_weather."


def only(vendor: Vendor, *names: str) -> None:
    if vendor.name not in names:
        pytest.skip(f"only {', '.join(names)}")


def variant(vendor: Vendor, **options: object) -> Provider:
    assert vendor.variant is not None
    return vendor.variant(**options)


async def tool_loop_then_next_turn(vendor: Vendor, provider: Provider) -> list[ToolCall]:
    """A weather round, its answer, then a second user turn: the calls of the round."""
    history = [SYSTEM, ChatMessage(Role.USER, "weather in Paris?")]
    vendor.script(vendor.tools(("get_weather", {"city": "Paris"}), reasoning=THOUGHT))
    first = await run(provider, history)
    history = answered(history, first, [ok(first.calls[0], "sunny")])
    vendor.script(vendor.text("Sunny."), vendor.text("Still sunny."))
    second = await run(provider, history)
    history += [
        ChatMessage(Role.ASSISTANT, second.text, vendor_state=second.finish.vendor_state),
        ChatMessage(Role.USER, "and now?"),
    ]
    third = await run(provider, history)
    assert third.text == "Still sunny." and vendor.server.rejected == []
    return list(first.calls)


async def test_kimi_reasoning_on_every_tool_round_and_ids_verbatim(vendor: Vendor) -> None:
    only(vendor, "kimi")
    calls = await tool_loop_then_next_turn(vendor, vendor.provider)
    [call] = calls
    assert call.id.startswith("functions.get_weather:")  # Kimi's own shape
    for request in vendor.requests[1:]:
        [message] = [m for m in assistant_messages(request) if m.get("tool_calls")]
        assert message["reasoning_content"] == THOUGHT
        assert message["tool_calls"][0]["id"] == call.id  # verbatim, never rewritten
        assert [m["tool_call_id"] for m in request["messages"] if m["role"] == "tool"] == [call.id]
    # A round Kimi did not make (another vendor's) goes back with an empty field.
    foreign = ToolCall("call_from_before", "get_weather", {"city": "Rome"})
    history = [
        ChatMessage(Role.USER, "weather in Rome?"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(foreign,)),
        ChatMessage(Role.TOOL, "rainy", tool_call_id=foreign.id, name=foreign.name),
    ]
    vendor.script(vendor.text("Rainy in Rome."))
    assert (await run(vendor.provider, history)).text == "Rainy in Rome."
    assert assistant_messages(vendor.requests[-1])[0]["reasoning_content"] == ""
    # What a provider that drops reasoning sends is refused, as Kimi refuses it.
    with pytest.raises(ProviderBadRequest, match="reasoning_content is missing"):
        await run(variant(vendor, profile=GENERIC, thinking="off"), history)
    assert vendor.server.rejected == [KIMI_REASONING_MISSING.format(index=1)]


async def test_mistral_ids_and_only_known_fields(vendor: Vendor) -> None:
    only(vendor, "mistral")
    calls = await tool_loop_then_next_turn(vendor, vendor.provider)
    assert len(calls[0].id) == 9 and calls[0].id.isalnum()  # its own id, kept
    for request in vendor.requests:
        assert "stream_options" not in request
        assert all("reasoning_content" not in m for m in request["messages"])
    # A round another vendor made: its ids are mapped to Mistral's shape, pairs intact.
    foreign = ToolCall("call_0123456789abcdef", "get_weather", {"city": "Rome"})
    history = [
        ChatMessage(Role.USER, "weather in Rome?"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(foreign,)),
        ChatMessage(Role.TOOL, "rainy", tool_call_id=foreign.id, name=foreign.name),
    ]
    vendor.script(vendor.text("Rainy."))
    await run(variant(vendor, max_tokens=256), history)
    sent = vendor.requests[-1]
    mapped = sent["messages"][1]["tool_calls"][0]["id"]
    assert len(mapped) == 9 and mapped.isalnum() and sent["messages"][2]["tool_call_id"] == mapped
    assert sent["max_tokens"] == 256 and "max_completion_tokens" not in sent
    # The generic profile asks for usage in stream_options, which Mistral refuses.
    with pytest.raises(ProviderBadRequest, match="extra_forbidden"):
        await run(variant(vendor, profile=GENERIC), [ChatMessage(Role.USER, "hi")])


async def test_openrouter_reasoning_details_back_unchanged(vendor: Vendor) -> None:
    only(vendor, "openrouter")
    await tool_loop_then_next_turn(vendor, vendor.provider)
    # Without the details (a provider that drops them), Gemini behind OpenRouter refuses.
    history = [ChatMessage(Role.USER, "weather in Paris?")]
    vendor.script(vendor.tools(("get_weather", {"city": "Paris"}), reasoning=THOUGHT))
    dropping = variant(vendor, profile=GENERIC)
    first = await run(dropping, history)
    with pytest.raises(ProviderBadRequest, match="Provider returned error"):
        await run(dropping, answered(history, first, [ok(first.calls[0], "sunny")]))
    assert vendor.server.rejected == [f"Provider returned error: {OPENROUTER_DETAILS_MISSING}"]


async def test_minimax_think_block_kept_in_history_never_shown(vendor: Vendor) -> None:
    only(vendor, "minimax")
    await tool_loop_then_next_turn(vendor, vendor.provider)
    for request in vendor.requests[1:]:
        [message] = [m for m in assistant_messages(request) if m.get("tool_calls")]
        assert message["content"] == f"<think>{THOUGHT}</think>"
    # Two system messages are refused by MiniMax; Parley sends one.
    assert all([m["role"] for m in r["messages"]].count("system") == 1 for r in vendor.requests)


async def test_thinking_vendors_get_their_reasoning_back(vendor: Vendor) -> None:
    only(vendor, "glm", "ark")
    await tool_loop_then_next_turn(vendor, variant(vendor, thinking="on"))
    for request in vendor.requests[1:]:
        assert request["thinking"] == {"type": "enabled"}
        [message] = [m for m in assistant_messages(request) if m.get("tool_calls")]
        assert message["reasoning_content"] == THOUGHT


async def test_siliconflow_thinking_switch_and_error_shape(vendor: Vendor) -> None:
    only(vendor, "siliconflow")
    await tool_loop_then_next_turn(vendor, variant(vendor, thinking="on", thinking_budget=4096))
    assert vendor.requests[0]["enable_thinking"] is True
    assert vendor.requests[0]["thinking_budget"] == 4096
    # Its error body has no "error" wrapper; the message still reaches the log.
    with pytest.raises(ProviderBadRequest, match="thinking_budget must be between"):
        await run(variant(vendor, thinking="on", thinking_budget=64), [ChatMessage(Role.USER, "x")])


async def test_vllm_ids_go_back_verbatim(vendor: Vendor) -> None:
    only(vendor, "vllm")
    [call] = await tool_loop_then_next_turn(vendor, vendor.provider)
    assert call.id.startswith("chatcmpl-tool-") and len(call.id) == 46
    assert all(
        assistant_messages(r)[0]["tool_calls"][0]["id"] == call.id for r in vendor.requests[1:]
    )


async def test_gpt5_token_cap_and_temperature(vendor: Vendor) -> None:
    only(vendor, "openai")
    provider = variant(vendor, model="gpt-5-mini", max_tokens=512, temperature=0.2)
    await tool_loop_then_next_turn(vendor, provider)
    for request in vendor.requests:
        assert request["max_completion_tokens"] == 512 and "max_tokens" not in request
        assert "temperature" not in request  # only the default is taken
    # A conversation that came from vLLM: its 46-character ids are mapped to OpenAI's 40.
    long_id = "chatcmpl-tool-" + "ab" * 16
    foreign = ToolCall(long_id, "get_weather", {"city": "Rome"})
    history = [
        ChatMessage(Role.USER, "weather in Rome?"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(foreign,)),
        ChatMessage(Role.TOOL, "rainy", tool_call_id=long_id, name=foreign.name),
    ]
    vendor.script(vendor.text("Rainy."))
    await run(provider, history)
    sent = vendor.requests[-1]["messages"]
    assert len(sent[1]["tool_calls"][0]["id"]) <= 40
    assert sent[2]["tool_call_id"] == sent[1]["tool_calls"][0]["id"]
    assert vendor.server.rejected == []


async def test_generic_hands_back_whatever_reasoning_streamed(
    llm: ScriptedOpenAIServer,
) -> None:
    """An unknown host: the reasoning field that streamed with a tool round goes back
    under its own name (`reasoning` from this server)."""
    provider = OpenAICompatProvider(
        base_url=llm.base_url, api_key="sk-test", model="m", max_retries=0, profile=GENERIC
    )
    try:
        history = [ChatMessage(Role.USER, "weather in Paris?")]
        llm.script(
            tool_call_reply(("get_weather", {"city": "Paris"}), reasoning=THOUGHT, vendor="ollama")
        )
        first = await run(provider, history)
        assert first.finish.vendor_state is not None
        assert first.finish.vendor_state.data == {"reasoning": THOUGHT}
        llm.script(text_reply("Sunny."))
        await run(provider, answered(history, first, [ok(first.calls[0], "sunny")]))
        [message] = assistant_messages(llm.requests[-1])
        assert message["reasoning"] == THOUGHT and "reasoning_content" not in message
        assert json.dumps(llm.requests[0]).count(THOUGHT) == 0
    finally:
        await provider.aclose()
