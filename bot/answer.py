"""One model answer: streamed to the surface as it arrives, asked for again once if the
stream was cut off before any of its text was shown.

A stream that ends without the vendor's terminator raises `AnswerCutOff` in the provider,
possibly after some text. Nothing shown yet: a second call costs the user nothing, so it
is made (once: a vendor that keeps cutting off is failing, and the turn says so). Some
text shown: asking again would repeat it on screen, so the answer comes back `cut` and
the engine tells the user. A tool call from a cut stream is incomplete and never runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain import ChatMessage, ToolCall, Usage, VendorState
from bot.errors import AnswerCutOff
from bot.llm.base import (
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.observe import Observer
from bot.surface import Surface

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ModelAnswer:
    """What one model call produced; `cut` when its stream ended without a terminator
    after some of its text was shown (then `calls` is empty)."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    vendor_state: VendorState | None = None
    cut: bool = False
    seconds: float = 0.0  # waiting for the provider, every attempt counted


async def call_model(
    provider: Provider,
    observer: Observer,
    context: Sequence[ChatMessage],
    specs: Sequence[ToolSpec],
    surface: Surface,
    visible: list[str],
    channel_model: str = "",
) -> ModelAnswer:
    """Stream one answer; `visible` (the turn's text shown so far) gains its text."""
    spent: list[float] = []
    try:
        answer = await _stream(
            provider, observer, context, specs, surface, visible, channel_model, spent
        )
    except AnswerCutOff as exc:
        log.warning("the model's answer was cut off before any text: asking again (%s)", exc)
        answer = await _stream(
            provider, observer, context, specs, surface, visible, channel_model, spent
        )
    answer.seconds = sum(spent)
    return answer


async def _stream(
    provider: Provider,
    observer: Observer,
    context: Sequence[ChatMessage],
    specs: Sequence[ToolSpec],
    surface: Surface,
    visible: list[str],
    channel_model: str,
    spent: list[float],
) -> ModelAnswer:
    answer = ModelAnswer(model=channel_model or provider.model)
    parts: list[str] = []
    started = time.perf_counter()
    failed = True
    try:
        stream = (
            provider.stream(context, specs, model=channel_model)
            if channel_model
            else provider.stream(context, specs)
        )
        async for event in stream:
            if isinstance(event, TextDelta):
                if not parts and visible:
                    await surface.stream("\n\n")
                parts.append(event.text)
                await surface.stream(event.text)
            elif isinstance(event, ReasoningDelta):
                await surface.thinking(event.text)
            elif isinstance(event, ToolCallsReady):
                answer.calls = event.calls
            elif isinstance(event, TurnFinished):
                answer.usage, answer.model = event.usage, event.model or answer.model
                answer.vendor_state = event.vendor_state
        failed = False
    except AnswerCutOff as exc:
        if not parts:
            raise  # nothing shown: the caller may ask again
        log.warning(
            "the model's answer was cut off after %d characters were shown (%s)",
            sum(len(part) for part in parts),
            exc,
        )
        answer.cut, answer.calls = True, ()
    finally:
        spent.append(time.perf_counter() - started)
        observer.llm_call(answer.model, answer.usage, failed=failed)
    answer.text = "".join(parts)
    if answer.text:
        visible.append(answer.text)
    return answer
