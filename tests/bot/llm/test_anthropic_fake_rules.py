"""The scripted Anthropic server's refusals, each with the Messages API's wording: a fake
is only as good as what it refuses."""

from __future__ import annotations

from typing import Any

from tests.fakes.anthropic_rules import Signer, validate_request


def test_the_server_refuses_what_the_api_refuses() -> None:
    """The fake's own refusals, each with the API's wording."""
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    loop = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me see."}, tool_use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
    ]

    def problem(**body: Any) -> str | None:
        return validate_request({"model": "m", "max_tokens": 4096, "messages": loop, **body})

    assert problem() is None
    missing = problem(thinking={"type": "adaptive"}) or ""
    assert missing.startswith(
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`"
    )
    enabled = {"type": "enabled", "budget_tokens": 1024}
    assert "Expected `thinking`" in (problem(thinking=enabled) or "")
    assert problem(thinking={"type": "enabled", "budget_tokens": 1000}) == (
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    )
    too_big = {"type": "enabled", "budget_tokens": 4096}
    assert (problem(thinking=too_big) or "").startswith(
        "`max_tokens` must be greater than `thinking.budget_tokens`"
    )
    forced = problem(
        thinking=enabled, tool_choice={"type": "any"}, messages=[{"role": "user", "content": "x"}]
    )
    assert forced == "Thinking may not be enabled when tool_choice forces tool use."
    hot = problem(thinking=enabled, temperature=0.2, messages=[{"role": "user", "content": "x"}])
    assert (hot or "").startswith("`temperature` may only be set to 1 when thinking is enabled")
    only_thinking = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "", "signature": ""}]},
        {"role": "user", "content": "y"},
    ]
    assert problem(messages=only_thinking) == (
        "messages.1: The final block in an assistant message cannot be `thinking`."
    )


def test_the_server_keeps_one_thinking_configuration_per_turn() -> None:
    thought = {"type": "thinking", "thinking": "t", "signature": "s"}
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}
    began_thinking = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [thought, tool_use]},
        result,
    ]
    body = {"model": "m", "max_tokens": 4096, "messages": began_thinking}
    assert validate_request(body) == (
        "messages.1.content.0: When thinking is disabled, an `assistant` message in the final "
        "position cannot contain `thinking`. To use thinking blocks, enable `thinking` in "
        "your request."
    )
    assert validate_request(body, thinks_by_default=True) is None
    assert validate_request({**body, "thinking": {"type": "adaptive"}}) is None
    # A finished turn's thinking is no longer part of the loop rule.
    later = [
        *began_thinking,
        {"role": "assistant", "content": "Sunny."},
        {"role": "user", "content": "ok"},
    ]
    assert validate_request({**body, "messages": later}) is None


def test_signatures_are_bound_to_server_model_and_text() -> None:
    signer = Signer()
    block = {"type": "thinking", "thinking": "t", "signature": signer.signature("m", "t")}
    assert signer.valid("m", block)
    assert not signer.valid("other-model", block)
    assert not signer.valid("m", {**block, "thinking": "t2"})
    assert not Signer().valid("m", block)  # another server's key
    redacted = {"type": "redacted_thinking", "data": signer.redacted_data("m")}
    assert signer.valid("m", redacted) and not signer.valid("n", redacted)
    assert not signer.valid("m", {"type": "redacted_thinking", "data": "not base64!"})
