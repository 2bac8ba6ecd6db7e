"""Anthropic thinking: what `PARLEY_LLM_THINKING` sends, the rules a thinking request keeps,
and the `VendorState` that carries a response's thinking blocks back to the API.

Per Anthropic's thinking pages (late 2026): Claude 4.5 and earlier take only manual thinking
(`{"type": "enabled", "budget_tokens": N}`, N at least 1024 and below `max_tokens`); the
Claude 4.6 models take both, manual being deprecated; Claude 4.7 and later take adaptive
thinking only (`{"type": "adaptive"}`) and refuse `enabled` with a 400, and many of them
think by default. So "on" sends adaptive unless the model is known to need a budget;
"auto" and "off" send nothing, which leaves the model's default (some newer models refuse
`disabled`). Whatever was asked, any thinking block that comes back is kept.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from bot.domain import VendorState
from bot.errors import ConfigError
from bot.llm.anthropic_history import THINKING_TYPES, drop_loop_thinking, loop_lacks_thinking

log = logging.getLogger("bot.llm.anthropic")

DEFAULT_MAX_TOKENS = 4096
# budget_tokens when PARLEY_LLM_THINKING_BUDGET is unset; the API's floor is 1024.
DEFAULT_THINKING_BUDGET = 2048
MIN_THINKING_BUDGET = 1024
# Models that know only manual thinking, and the Claude 4.6 models that take both. Every
# other model, the newer ones included, is sent adaptive thinking.
_MANUAL_ONLY = re.compile(
    r"claude-(?:3-7-sonnet|(?:sonnet|opus|haiku)-4-5|sonnet-4-(?:0|2025)|opus-4-(?:0|1|2025))"
)
_BOTH_MODES = re.compile(r"claude-(?:opus|sonnet)-4-6")
_FORCED_CHOICES = ("any", "tool")


class ThinkingRules:
    """The thinking part of one provider's requests; warns once per kind of setting it
    has to leave out."""

    def __init__(
        self,
        mode: Literal["auto", "on", "off"],
        budget: int | None,
        max_tokens: int | None,
    ) -> None:
        if mode == "on" and budget is not None:
            if budget < MIN_THINKING_BUDGET:
                raise ConfigError(
                    f"PARLEY_LLM_THINKING_BUDGET={budget} is below Anthropic's minimum "
                    f"budget_tokens of {MIN_THINKING_BUDGET}"
                )
            if max_tokens is not None and budget >= max_tokens:
                raise ConfigError(
                    f"PARLEY_LLM_THINKING_BUDGET={budget} must be below "
                    f"PARLEY_LLM_MAX_TOKENS={max_tokens}: Anthropic counts thinking in max_tokens"
                )
        self.mode = mode
        self._budget = budget
        self._max_tokens = max_tokens
        self._warned: set[str] = set()

    def ask(self, request: dict[str, Any], model: str) -> None:
        """Add the `thinking` parameter "on" means for `model` (and room for it)."""
        if self.mode != "on":
            return
        if _MANUAL_ONLY.search(model) or (self._budget is not None and _BOTH_MODES.search(model)):
            budget = self._budget or DEFAULT_THINKING_BUDGET
            if self._max_tokens is None:
                request["max_tokens"] = budget + DEFAULT_MAX_TOKENS  # room for the answer
            elif budget >= self._max_tokens:  # only the default budget can get here
                budget = self._max_tokens - 1
                if budget < MIN_THINKING_BUDGET:
                    self.warn_once(
                        "budget",
                        "PARLEY_LLM_MAX_TOKENS=%d leaves no room for Anthropic's minimum "
                        "thinking budget (%d): thinking is not asked for",
                        self._max_tokens,
                        MIN_THINKING_BUDGET,
                    )
                    return
            request["thinking"] = {"type": "enabled", "budget_tokens": budget}
            return
        if self._budget is not None:
            self.warn_once(
                "adaptive",
                "%s takes adaptive thinking: PARLEY_LLM_THINKING_BUDGET is not sent",
                model,
            )
        request["thinking"] = {"type": "adaptive"}

    def enforce(self, request: dict[str, Any]) -> None:
        """Make a request that carries thinking (asked for, or from PARLEY_LLM_EXTRA_BODY)
        keep the rules: one thinking configuration per tool loop, no forced tool, no
        temperature or top_k."""
        thinking = request.get("thinking")
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
            return
        if loop_lacks_thinking(request["messages"]):
            # The loop's first assistant message has no thinking block to lead with, which
            # the API refuses with thinking on: the loop finishes without thinking, as it
            # began, and without the blocks a later round may have brought.
            log.info("continuing a tool loop that began without thinking: no thinking sent")
            del request["thinking"]
            drop_loop_thinking(request["messages"])
            return
        choice = request.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in _FORCED_CHOICES:
            self.warn_once(
                "tool_choice",
                "tool_choice %r cannot be used with thinking: auto is sent instead",
                choice.get("type"),
            )
            request["tool_choice"] = {
                "type": "auto",
                **{k: v for k, v in choice.items() if k == "disable_parallel_tool_use"},
            }
        for key in ("temperature", "top_k"):
            if key in request:
                self.warn_once(key, "%s cannot be used with thinking: not sent", key)
                del request[key]

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)


def thinking_state(
    kept: dict[int, dict[str, Any]],
    order: list[tuple[str, int, int]],
    said: int,
    model: str,
    vendor: str,
) -> VendorState:
    """The thinking blocks of one response, to go back with it to `model` only (of the
    provider whose state key is `vendor`).

    `order` lists the response's content blocks as (type, index, answer characters before
    it). `layout` is stored only when a thinking block followed text or a tool call, so the
    original order can be restored; otherwise the blocks simply lead the message."""
    blocks = [kept[index] for _, index, _ in order if index in kept]
    data: dict[str, Any] = {"blocks": blocks, "model": model}
    kinds = [block_type in THINKING_TYPES for block_type, _, _ in order]
    if False in kinds and True in kinds[kinds.index(False) :]:
        layout: list[list[Any]] = []
        thinking = calls = 0
        for position, (block_type, _, start) in enumerate(order):
            if block_type in THINKING_TYPES:
                layout.append(["thinking", thinking])
                thinking += 1
            elif block_type == "tool_use":
                layout.append(["tool_use", calls])
                calls += 1
            elif block_type == "text":
                end = order[position + 1][2] if position + 1 < len(order) else said
                if end > start:
                    layout.append(["text", start, end])
        data["layout"] = layout
    return VendorState(vendor, data)
