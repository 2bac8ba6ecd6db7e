"""PARLEY_LLM_THINKING (auto|on|off) and PARLEY_LLM_THINKING_BUDGET, per vendor.

Each OpenAI-compatible vendor switches thinking its own way, and refuses what the
others accept. "auto" sends nothing (the model's default; the one exception is a
non-streaming DashScope call, which must say thinking is off); what a vendor cannot take
is left out and named once in the start-up warning. Sources: DeepSeek's thinking_mode
guide, DashScope's deep-thinking page and error codes, vLLM's reasoning outputs page,
Ollama's OpenAI compatibility (docs/providers.md has the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.llm.profiles import VendorProfile


@dataclass(frozen=True, slots=True)
class ThinkingPlan:
    """What goes into every request body, and what had to be dropped (for the warning)."""

    body: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def plan_thinking(
    profile: VendorProfile, mode: str, budget: int | None, *, stream: bool
) -> ThinkingPlan:
    """The request fields that carry `mode` and `budget` to `profile`'s vendor."""
    on = mode == "on"
    style = profile.thinking
    body: dict[str, Any] = {}
    dropped: list[str] = []
    if style == "deepseek":
        # {"thinking": {"type": "enabled"|"disabled"}}; DeepSeek takes an effort, not a budget.
        if mode != "auto":
            body["thinking"] = {"type": "enabled" if on else "disabled"}
        if budget is not None:
            dropped.append("a thinking budget")
    elif style == "dashscope":
        # Thinking only in streaming calls: a model that thinks by default refuses a
        # non-streaming call unless it says enable_thinking=false, so that one is always
        # sent ("parameter.enable_thinking must be set to false for non-streaming calls").
        if not stream:
            body["enable_thinking"] = False
            if on or budget is not None:
                dropped.append("thinking without streaming")
        else:
            if mode != "auto":
                body["enable_thinking"] = on
            if budget is not None and mode != "off":
                body["thinking_budget"] = budget
    elif style == "siliconflow":
        # enable_thinking and thinking_budget, for the models that can switch (streaming or
        # not: unverified, so never forced).
        if mode != "auto":
            body["enable_thinking"] = on
        if budget is not None and mode != "off":
            body["thinking_budget"] = budget
    elif style == "vllm":
        # The chat template's switch (Qwen3: enable_thinking; Granite, DeepSeek-V3.1:
        # thinking); a template ignores the one it does not use.
        if mode != "auto":
            body["chat_template_kwargs"] = {"enable_thinking": on, "thinking": on}
        if budget is not None and mode != "off":
            body["thinking_token_budget"] = budget
    elif style == "ollama":
        # Ollama's /v1 endpoint maps reasoning_effort to its `think` option; "none" is off.
        if mode != "auto":
            body["reasoning_effort"] = "medium" if on else "none"
        if budget is not None:
            dropped.append("a thinking budget")
    elif style == "gemini":
        # reasoning_effort ("none" turns thinking off where the model can), or a budget in
        # Google's own block; the two together are refused.
        if mode == "off":
            body["reasoning_effort"] = "none"
        elif budget is not None:
            body["extra_body"] = {"google": {"thinking_config": {"thinking_budget": budget}}}
        elif on:
            body["reasoning_effort"] = "medium"
    elif mode != "auto" or budget is not None:
        dropped.append(f"PARLEY_LLM_THINKING={mode}" if mode != "auto" else "a thinking budget")
    return ThinkingPlan(body, tuple(dropped))


def may_think(profile: VendorProfile, mode: str, *, stream: bool) -> bool:
    """True when a vendor that refuses forced tool_choice and JSON mode while thinking
    may be thinking: its models think unless told not to (DashScope's non-streaming
    calls are always told)."""
    if profile.thinking == "dashscope" and not stream:
        return False
    return profile.thinks_by_default and mode != "off"
