"""Gemini and ERNIE (Qianfan) through OpenAICompatProvider, over real HTTP.

The fake answers errors in each vendor's own body shape and refuses as each refuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.config import LLMSettings
from bot.domain import ChatMessage, Role, VendorState
from bot.errors import ProviderBadRequest, ProviderRateLimited, ProviderUnavailable
from bot.llm.base import StreamEvent, TextDelta, TurnFinished
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.profiles import PROFILES, detect_profile
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    deltas_reply,
    ernie_error_reply,
    gemini_error_reply,
    text_reply,
    tool_call_reply,
)

Make = Callable[..., OpenAICompatProvider]
HELLO = [ChatMessage(Role.USER, "hi")]


@pytest.fixture
async def make(llm: ScriptedOpenAIServer) -> AsyncIterator[Make]:
    made: list[OpenAICompatProvider] = []

    def build(profile: str, **options: Any) -> OpenAICompatProvider:
        llm.refuse_as(profile)
        options = {"model": "m", "max_retries": 0, "api_key": "k", **options}
        provider = OpenAICompatProvider(base_url=llm.base_url, profile=PROFILES[profile], **options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


async def collect(provider: OpenAICompatProvider) -> list[StreamEvent]:
    return [event async for event in provider.stream(HELLO, [])]


@pytest.mark.parametrize(
    ("url", "profile"),
    [
        ("https://generativelanguage.googleapis.com/v1beta/openai/", "gemini"),
        ("https://qianfan.baidubce.com/v2", "ernie"),
    ],
)
def test_gemini_and_ernie_are_detected(url: str, profile: str) -> None:
    assert detect_profile(url).name == profile
    settings = LLMSettings(_env_file=None, PARLEY_LLM_PROFILE=profile)  # type: ignore[call-arg]
    assert OpenAICompatProvider.from_settings(settings).profile.name == profile


async def test_gemini_error_arrays_are_read(llm: ScriptedOpenAIServer, make: Make) -> None:
    llm.script(gemini_error_reply(400, message="Request contains an invalid argument."))
    with pytest.raises(ProviderBadRequest, match="Request contains an invalid argument"):
        await collect(make("gemini"))


async def test_a_gemini_429_waits_as_long_as_its_body_says(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    # The SDK retries a 429 after its own short backoff unless told otherwise; Gemini says
    # how long only in the body. A delay past the SDK's two-minute cap means: no retry.
    llm.script(gemini_error_reply(429, message="Quota exceeded.", retry_delay="300s"))
    llm.set_default(text_reply("too early"))
    with pytest.raises(ProviderRateLimited, match="Quota exceeded"):
        await collect(make("gemini", max_retries=2))
    assert len(llm.requests) == 1


async def test_a_short_gemini_retry_delay_is_retried(llm: ScriptedOpenAIServer, make: Make) -> None:
    llm.script(gemini_error_reply(429, message="Quota exceeded.", retry_delay="0.01s"))
    llm.script(text_reply("Now it works."))
    events = await collect(make("gemini", max_retries=1))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Now it works."
    assert len(llm.requests) == 2


async def test_gemini_non_streamed_signatures_are_kept(
    llm: ScriptedOpenAIServer, make: Make
) -> None:
    llm.script(tool_call_reply(("get_weather", {"city": "Oslo"}), vendor="gemini"))
    events = await collect(make("gemini", stream=False))
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.finish_reason == "tool_calls"
    [signature] = llm.issued_signatures
    assert finished.vendor_state == VendorState("gemini", {"signatures": {"0": signature}})


async def test_ernie_sends_the_appid_header_and_reads_qianfan_errors(
    llm: ScriptedOpenAIServer,
) -> None:
    settings = LLMSettings(
        _env_file=None,  # type: ignore[call-arg]
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="bce-v3/ALTAK-test",
        PARLEY_LLM_PROFILE="ernie",
        PARLEY_QIANFAN_APPID="app-42",
        PARLEY_LLM_MAX_RETRIES=0,
    )
    provider = OpenAICompatProvider.from_settings(settings)
    try:
        llm.refuse_as("ernie")
        llm.script(
            text_reply("你好", vendor="ernie", reasoning="想一想"),
            ernie_error_reply(
                429,
                message="Rate limit reached for RPM",
                code="rpm_rate_limit_exceeded",
                kind="rate_limit_exceeded",
            ),
        )
        events = await collect(provider)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "你好"
        headers = llm.request_headers[0]
        assert headers["appid"] == "app-42"
        assert headers["authorization"] == "Bearer bce-v3/ALTAK-test"
        with pytest.raises(ProviderRateLimited, match="Rate limit reached for RPM"):
            await collect(provider)
    finally:
        await provider.aclose()


def test_no_appid_no_header() -> None:
    settings = LLMSettings(_env_file=None, PARLEY_LLM_PROFILE="ernie")  # type: ignore[call-arg]
    provider = OpenAICompatProvider.from_settings(settings)
    assert "appid" not in provider._client.default_headers


async def test_an_error_array_mid_stream_is_an_error(llm: ScriptedOpenAIServer, make: Make) -> None:
    llm.script(
        deltas_reply(
            {"content": "Partial"},
            finish_reason=None,
            done=False,
            raw=b'data: [{"error": {"code": 503, "message": "The model is overloaded.",'
            b' "status": "UNAVAILABLE"}}]\n\n',
        )
    )
    with pytest.raises(ProviderUnavailable, match="The model is overloaded"):
        await collect(make("gemini"))
