"""Abnormal finishes, per vendor: each way a vendor ends an answer that is not a finished
one, mapped to the neutral outcome of the Provider contract (bot/llm/base.py), and then a
second turn whose history holds what the engine stores of it (the text shown and a note;
nothing for a refusal), which the vendor must accept. `python -m tests.conformance.table`
puts these rows into docs/providers.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.domain import ChatMessage, Role
from bot.errors import ProviderError, StreamFailed
from bot.llm.base import FAILED, FILTERED, LENGTH, REFUSED, TextDelta
from tests.conformance.conftest import Vendor
from tests.conformance.test_scenarios import TOOLS, run
from tests.fakes.anthropic_server import anthropic_stream_error_reply, anthropic_text_reply
from tests.fakes.openai_server import (
    ScriptedReply,
    openrouter_error_reply,
    refusal_reply,
    stream_error_reply,
)

PARTIAL = "The first half of an answ"
NOTE = "(The answer stopped here.)"
# The finish each vendor sends for a filtered answer (docs/providers.md names the sources).
FILTER_FINISH = {
    "openai": "content_filter",
    "dashscope": "content_filter",
    "deepseek": "content_filter",
    "gemini": "content_filter",
    "ernie": "content_filter",
    "glm": "sensitive",
    "kimi": "content_filter",
    "ark": "content_filter",
}
# A failure inside a 200 stream, by finish reason.
FAILED_FINISH = {
    "deepseek": "insufficient_system_resource",
    "glm": "network_error",
}


async def second_turn_is_accepted(vendor: Vendor, first: list[ChatMessage]) -> None:
    script = anthropic_text_reply if vendor.name == "anthropic" else vendor.text
    vendor.script(script("Fine now."))
    again = await run(vendor.provider, [*first, ChatMessage(Role.USER, "and now?")])
    assert again.text == "Fine now."
    rejected = getattr(vendor.server, "rejected", [])
    assert rejected == []


def stored_unfinished(question: str, shown: str) -> list[ChatMessage]:
    return [
        ChatMessage(Role.USER, question),
        ChatMessage(Role.ASSISTANT, f"{shown}\n\n{NOTE}"),
    ]


async def test_filtered_after_text(vendor: Vendor) -> None:
    if vendor.name not in FILTER_FINISH:
        pytest.skip("this vendor documents no content-filter finish")
    vendor.script(vendor.text(PARTIAL, finish_reason=FILTER_FINISH[vendor.name]))
    first = await run(vendor.provider, [ChatMessage(Role.USER, "tell me")])
    assert (first.text, first.finish.outcome) == (PARTIAL, FILTERED)
    await second_turn_is_accepted(vendor, stored_unfinished("tell me", PARTIAL))


async def test_length_limit(vendor: Vendor) -> None:
    if vendor.name == "anthropic":
        vendor.script(anthropic_text_reply(PARTIAL, stop_reason="max_tokens"))
    else:
        vendor.script(vendor.text(PARTIAL, finish_reason="length"))
    first = await run(vendor.provider, [ChatMessage(Role.USER, "tell me")])
    assert (first.text, first.finish.outcome) == (PARTIAL, LENGTH)
    await second_turn_is_accepted(vendor, stored_unfinished("tell me", PARTIAL))


async def test_refusal_turn_left_out(vendor: Vendor) -> None:
    replies: dict[str, Callable[[], ScriptedReply]] = {
        "openai": lambda: refusal_reply("I can't help with that."),
        "anthropic": lambda: anthropic_text_reply("I can't", stop_reason="refusal"),
    }
    if vendor.name not in replies:
        pytest.skip("this vendor declines in words or with its content filter")
    vendor.script(replies[vendor.name]())
    first = await run(vendor.provider, [ChatMessage(Role.USER, "something bad")])
    assert first.finish.outcome == REFUSED and first.calls == ()
    # The refused turn is not stored: the next request starts without it.
    await second_turn_is_accepted(vendor, [])
    assert "something bad" not in str(vendor.requests[-1]["messages"])


async def test_failed_finish_after_text(vendor: Vendor) -> None:
    if vendor.name not in FAILED_FINISH:
        pytest.skip("this vendor documents no failure finish reason")
    vendor.script(vendor.text(PARTIAL, finish_reason=FAILED_FINISH[vendor.name]))
    first = await run(vendor.provider, [ChatMessage(Role.USER, "tell me")])
    assert (first.text, first.finish.outcome, first.finish.transient) == (PARTIAL, FAILED, True)
    await second_turn_is_accepted(vendor, stored_unfinished("tell me", PARTIAL))


async def test_error_after_text(vendor: Vendor) -> None:
    """An error object after the stream began (OpenAI's `data: {"error": …}` line,
    OpenRouter's chunk with `finish_reason: "error"`, Anthropic's `event: error`)."""
    if vendor.name == "anthropic":
        reply = anthropic_stream_error_reply("Overloaded")
    elif vendor.name == "openrouter":
        reply = openrouter_error_reply(PARTIAL)
    else:
        reply = stream_error_reply("The server had an error while processing your request.")
    vendor.script(reply)
    shown: list[str] = []

    async def read() -> None:
        async for event in vendor.provider.stream([ChatMessage(Role.USER, "tell me")], TOOLS):
            if isinstance(event, TextDelta):
                shown.append(event.text)

    with pytest.raises(ProviderError) as caught:
        await read()
    assert isinstance(caught.value, StreamFailed)  # transient: asked again if nothing shown
    assert shown
    await second_turn_is_accepted(vendor, stored_unfinished("tell me", "".join(shown)))
