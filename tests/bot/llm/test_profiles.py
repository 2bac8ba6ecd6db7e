"""Vendor profiles: what OpenAICompatProvider sends to each vendor, and reads back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.config import LLMSettings
from bot.domain import ChatMessage, Role
from bot.llm.base import ToolSpec
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.profiles import PROFILES, ThinkTagFilter, detect_profile
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply

TOOL = ToolSpec("t", "d", {"type": "object", "properties": {}}, strict=True)
LOOSE = ToolSpec("u", "d", {"type": "object", "properties": {}}, strict=False)
Make = Callable[..., OpenAICompatProvider]


@pytest.fixture
async def make(llm: ScriptedOpenAIServer) -> AsyncIterator[Make]:
    made: list[OpenAICompatProvider] = []

    def build(profile: str, **options: Any) -> OpenAICompatProvider:
        provider = OpenAICompatProvider(
            base_url=llm.base_url, api_key="k", model="m", profile=PROFILES[profile], **options
        )
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


@pytest.mark.parametrize(
    ("url", "profile"),
    [
        ("https://api.openai.com/v1", "openai"),
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "dashscope"),
        ("https://api.deepseek.com/v1", "deepseek"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://gpu-box:8000/v1", "generic"),
        ("https://ws-abc123.cn-beijing.maas.aliyuncs.com/compatible-mode/v1", "dashscope"),
        ("https://api.moonshot.ai/v1", "kimi"),
        ("https://api.moonshot.cn/v1", "kimi"),
        ("https://open.bigmodel.cn/api/paas/v4", "glm"),
        ("https://api.z.ai/api/paas/v4", "glm"),
        ("https://api.minimax.io/v1", "minimax"),
        ("https://api.minimaxi.com/v1", "minimax"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.mistral.ai/v1", "mistral"),
        ("https://ark.cn-beijing.volces.com/api/v3", "ark"),
        ("https://api.siliconflow.cn/v1", "siliconflow"),
        ("https://notopenrouter.ai/v1", "generic"),  # a suffix of the name is not the host
        # Azure OpenAI under older api-versions refuses max_completion_tokens: the generic
        # profile, which caps with max_tokens (bot/llm/profiles.py).
        ("https://team.openai.azure.com/openai/deployments/gpt-4o", "generic"),
    ],
)
def test_profile_is_detected_from_the_base_url(url: str, profile: str) -> None:
    assert detect_profile(url).name == profile


def test_settings_pick_the_profile() -> None:
    settings = LLMSettings(
        _env_file=None,  # type: ignore[call-arg]
        OPENAI_BASE_URL="https://dashscope.aliyuncs.com/compatible-mode/v1",
        OPENAI_API_KEY="k",
    )
    provider = OpenAICompatProvider.from_settings(settings)
    assert provider.profile.name == "dashscope"
    settings = LLMSettings(_env_file=None, PARLEY_LLM_PROFILE="vllm")  # type: ignore[call-arg]
    assert OpenAICompatProvider.from_settings(settings).profile.name == "vllm"


def test_only_what_the_vendor_accepts_is_sent(make: Make, caplog: pytest.LogCaptureFixture) -> None:
    messages = [ChatMessage(Role.USER, "hi")]
    with caplog.at_level(logging.WARNING):
        ollama = make("ollama", parallel_tool_calls=True, strict_tools=True, tool_choice="required")
    request = ollama.build_request(messages, [TOOL])
    assert "parallel_tool_calls" not in request and "tool_choice" not in request
    assert "strict" not in request["tools"][0]["function"]
    assert "parallel_tool_calls=true, strict tool schemas, tool_choice=required" in caplog.text

    openai = make("openai", strict_tools=True, tool_choice="required")
    request = openai.build_request(messages, [TOOL, LOOSE])
    assert request["tool_choice"] == "required" and "parallel_tool_calls" not in request
    # A schema strict mode cannot express is never sent strict.
    assert [t["function"].get("strict") for t in request["tools"]] == [True, None]

    qwen = make("dashscope")
    assert qwen.build_request(messages, [TOOL])["parallel_tool_calls"] is True
    assert (
        make("dashscope", parallel_tool_calls=False).build_request(messages, [TOOL])[
            "parallel_tool_calls"
        ]
        is False
    )
    assert "parallel_tool_calls" not in qwen.build_request(messages, [])


async def test_non_streaming_strips_think_tags(llm: ScriptedOpenAIServer, make: Make) -> None:
    llm.script(text_reply("<think>hmm</think>\nYes."))
    provider = make("vllm", stream=False)
    texts = [
        e.text
        async for e in provider.stream([ChatMessage(Role.USER, "?")], [])
        if hasattr(e, "text")
    ]
    assert texts == ["Yes."]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_think_filter_handles_tags_split_anywhere(size: int) -> None:
    text = "<think>a < b\n</think>\n\nThe answer is <b>bold</b> and x<th."
    think = ThinkTagFilter()
    out = "".join(think.feed(text[i : i + size]) for i in range(0, len(text), size))
    assert out + think.flush() == "The answer is <b>bold</b> and x<th."


def test_an_unclosed_think_block_shows_nothing() -> None:
    think = ThinkTagFilter()
    assert think.feed("<think>still thinking") + think.flush() == ""


def test_the_token_cap_field_follows_the_host() -> None:
    """api.openai.com takes max_completion_tokens for every chat model; a host that is
    not it keeps the older max_tokens."""
    assert detect_profile("https://api.openai.com/v1").max_tokens_field == "max_completion_tokens"
    azure = detect_profile("https://team.openai.azure.com/openai/deployments/gpt-4o")
    assert azure.max_tokens_field == "max_tokens"
