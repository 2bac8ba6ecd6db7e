"""One harness per vendor: its provider, aimed at a scripted server in its stream shape.

The OpenAI-compatible vendors share `ScriptedOpenAIServer` (replies rendered with
`vendor=`, requests refused as that vendor refuses them: tests/fakes/openai_rules.py)
and differ in the `VendorProfile` the provider uses; Anthropic has its own server,
which refuses any request the Messages API would refuse. DeepSeek's harness thinks, as
its V4 models do by default: its tool rounds carry reasoning that must come back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.llm.anthropic import AnthropicProvider
from bot.llm.base import Provider
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.profiles import PROFILES
from tests.fakes.anthropic_server import (
    ScriptedAnthropicServer,
    anthropic_text_reply,
    anthropic_tool_reply,
)
from tests.fakes.openai_server import (
    VENDORS,
    ScriptedOpenAIServer,
    ScriptedReply,
    cut_reply,
    refusal_reply,
    text_reply,
    tool_call_reply,
)

ALL_VENDORS = (*VENDORS, "anthropic")


@dataclass
class Vendor:
    """What a scenario needs to script a vendor and read back what it was sent."""

    name: str
    provider: Provider
    server: ScriptedOpenAIServer
    text: Callable[..., ScriptedReply]
    tools: Callable[..., ScriptedReply]
    refusal: Callable[[str], ScriptedReply]
    refusal_finish: str
    # A stream cut without its terminator (None: scripted in the vendor's own scenarios).
    cut: Callable[[str], ScriptedReply] | None = None
    # Another provider for the same server: `variant(thinking="on")`, `variant(profile=…)`.
    variant: Callable[..., Provider] | None = None

    def script(self, *replies: ScriptedReply) -> None:
        self.server.script(*replies)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.server.requests

    def tool_results(self, request: dict[str, Any]) -> list[tuple[str, str, bool]]:
        """(call id, content, is_error) of every tool result the request carries."""
        if self.name == "anthropic":
            return [
                (b["tool_use_id"], b["content"], bool(b.get("is_error")))
                for m in request["messages"]
                if m["role"] == "user" and isinstance(m["content"], list)
                for b in m["content"]
                if b["type"] == "tool_result"
            ]
        return [
            (m["tool_call_id"], m["content"], False)
            for m in request["messages"]
            if m["role"] == "tool"
        ]

    def tool_call_ids(self, request: dict[str, Any]) -> list[str]:
        """Ids of the tool calls in the assistant messages of the request, in order."""
        if self.name == "anthropic":
            return [
                b["id"]
                for m in request["messages"]
                if m["role"] == "assistant"
                for b in m["content"]
                if b["type"] == "tool_use"
            ]
        return [
            c["id"]
            for m in request["messages"]
            if m["role"] == "assistant"
            for c in m.get("tool_calls") or []
        ]


@pytest.fixture(params=ALL_VENDORS)
async def vendor(
    request: pytest.FixtureRequest,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
) -> AsyncIterator[Vendor]:
    name: str = request.param
    harness: Vendor
    made: list[Provider] = []
    if name == "anthropic":
        harness = Vendor(
            name,
            AnthropicProvider(
                api_key="sk-ant-test", model="claude-test", base_url=claude.base_url, max_retries=0
            ),
            claude,
            anthropic_text_reply,
            anthropic_tool_reply,
            lambda text: anthropic_text_reply(text, stop_reason="refusal"),
            "refusal",
        )
    else:

        def text(value: str, **options: Any) -> ScriptedReply:
            return text_reply(value, vendor=name, **options)

        def tools(*calls: Any, **options: Any) -> ScriptedReply:
            if name == "deepseek":
                options.setdefault("reasoning", f"The user asked; I will call {calls[0][0]}.")
            return tool_call_reply(*calls, vendor=name, **options)

        def variant(**options: Any) -> Provider:
            provider = OpenAICompatProvider(
                **{
                    "base_url": llm.base_url,
                    "api_key": "sk-test",
                    "model": "test-model",
                    "max_retries": 0,
                    "profile": PROFILES[name],
                    **options,
                }
            )
            made.append(provider)
            return provider

        llm.refuse_as(name)
        harness = Vendor(
            name,
            variant(),
            llm,
            text,
            tools,
            lambda value: refusal_reply(value, vendor=name),
            {
                "openai": "refusal",
                "dashscope": "content_filter",
                "deepseek": "content_filter",
                "gemini": "content_filter",
            }.get(name, "stop"),
            cut=lambda value: cut_reply(value, vendor=name),
            variant=variant,
        )
    yield harness
    for provider in made or [harness.provider]:
        await provider.aclose()
