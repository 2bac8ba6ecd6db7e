"""One model answer: streamed to the surface as it arrives, asked for again once if the
stream was cut off, or failed in a way the vendor calls transient, before any of its
text was shown.

A stream that ends without the vendor's terminator raises `AnswerCutOff` in the provider,
possibly after some text; a transient failure inside a 200 stream raises `StreamFailed`
or finishes with the outcome FAILED (`transient`). Nothing shown yet: a second call costs
the user nothing, so it is made (once: a vendor that keeps failing is failing, and the
turn says so). A `FailoverProvider` asks again itself and then fails over to the next
provider (bot/llm/providers.py), so it is not asked again here. Some text shown: asking
again would repeat it on screen, so the answer comes back with its `outcome`
(bot/llm/base.py) and the engine tells the user. Only a COMPLETE answer is a finished
one; a tool call from any other is incomplete and never runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain import ChatMessage, ToolCall, Usage, VendorState
from bot.errors import AnswerCutOff, ProviderError, StreamFailed
from bot.i18n import N_, _
from bot.llm.base import (
    COMPLETE,
    FAILED,
    INTERRUPTED,
    Failover,
    Provider,
    ReasoningDelta,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.llm.providers import FailoverProvider
from bot.observe import Observer
from bot.surface import Surface

log = logging.getLogger(__name__)

# Told once in a turn whose answer (or part of it) came from a fallback provider.
FAILOVER_NOTE = N_("(The usual model was unavailable; another model finished this answer.)")


@dataclass(slots=True)
class ModelAnswer:
    """What one model call produced; `outcome` other than COMPLETE when it did not
    finish (then `calls` is empty)."""

    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    vendor_state: VendorState | None = None
    outcome: str = COMPLETE
    transient: bool = False
    seconds: float = 0.0  # waiting for the provider, every attempt counted

    @property
    def finished(self) -> bool:
        return self.outcome == COMPLETE


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
    again = not isinstance(provider, FailoverProvider)
    try:
        answer = await _stream(
            provider, observer, context, specs, surface, visible, channel_model, spent
        )
    except AnswerCutOff as exc:
        if not again:
            raise
        log.warning("the model's answer was cut off before any text: asking again (%s)", exc)
        answer = await _stream(
            provider, observer, context, specs, surface, visible, channel_model, spent
        )
    except StreamFailed as exc:
        if not again:
            raise
        log.warning("the model failed before any text, for now it says: asking again (%s)", exc)
        answer = await _stream(
            provider, observer, context, specs, surface, visible, channel_model, spent
        )
    else:
        if again and answer.outcome == FAILED and answer.transient and not answer.text:
            log.warning("the model's answer failed before any text: asking again")
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
            elif isinstance(event, Failover):
                observer.provider_failover(event.source, event.target)
                log.warning("provider %s failed: %s answers", event.source, event.target)
                note = _(FAILOVER_NOTE)
                if note not in visible:
                    await surface.stream(("\n\n" if visible else "") + note)
                    visible.append(note)
            elif isinstance(event, ToolCallsReady):
                answer.calls = event.calls
            elif isinstance(event, TurnFinished):
                answer.usage, answer.model = event.usage, event.model or answer.model
                answer.vendor_state = event.vendor_state
                answer.outcome, answer.transient = event.outcome, event.transient
        failed = answer.outcome == FAILED
    except ProviderError as exc:
        if not parts:
            raise  # nothing shown: the caller may ask again, or another provider
        log.warning(
            "the model's answer broke off after %d characters were shown (%s)",
            sum(len(part) for part in parts),
            exc,
        )
        answer.outcome = INTERRUPTED if isinstance(exc, AnswerCutOff) else FAILED
    finally:
        spent.append(time.perf_counter() - started)
        observer.llm_call(answer.model, answer.usage, failed=failed)
    if not answer.finished:
        if answer.calls:
            log.warning(
                "%d tool call(s) of an unfinished answer (%s) are not run",
                len(answer.calls),
                answer.outcome,
            )
        answer.calls = ()
    answer.text = "".join(parts)
    if answer.text:
        visible.append(answer.text)
    return answer
