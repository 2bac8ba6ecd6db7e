"""The `Provider` contract: what the engine needs from any LLM API.

`stream(messages, tools)` yields, in order: any number of `TextDelta` (and, where the
vendor streams its reasoning, `ReasoningDelta`s among them: shown to the user as
"thinking", never part of the answer), then at most one `ToolCallsReady` with every call
of the round fully assembled (arguments parsed, or a parse error recorded), then exactly
one `TurnFinished` with the vendor's finish reason, its neutral `outcome` (below), the
usage and any `VendorState` the vendor wants back with this answer (the engine stores it
on the assistant message and returns it in later requests). Vendor formats stop here:
the engine sees only these shapes. Failures raise a `ProviderError` subclass from
`bot.errors`; a stream that ends without the vendor's terminator raises `AnswerCutOff`,
possibly after some `TextDelta`s were yielded.

Every vendor's way of ending is mapped to one neutral `outcome`: COMPLETE (an answer or a
tool round), LENGTH (the token cap stopped it), FILTERED (the vendor's content filter:
OpenAI's `content_filter`, GLM's `sensitive`), REFUSED (the model declined: OpenAI's
streamed `refusal`, Anthropic's `stop_reason: "refusal"`), FAILED (the vendor says its
inference failed inside a 200 stream: OpenRouter's `error`, GLM's `network_error`,
DeepSeek's `insufficient_system_resource`; `transient` when retrying may help) and
INTERRUPTED (the stream ended without its terminator: raised as `AnswerCutOff`). A
mid-stream `{"error": ...}` object or Anthropic `event: error` is raised as the
`ProviderError` it maps to, `StreamFailed` when the vendor calls it transient. Only
COMPLETE is a finished answer; the engine tells the user of the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain import ChatMessage, ToolCall, Usage, VendorState

COMPLETE = "complete"
LENGTH = "length"
FILTERED = "filtered"
REFUSED = "refused"
FAILED = "failed"
INTERRUPTED = "interrupted"
OUTCOMES = (COMPLETE, LENGTH, FILTERED, REFUSED, FAILED, INTERRUPTED)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as offered to a model: vendor-neutral name, description and JSON schema.

    `strict` is False for a schema strict mode cannot express (some MCP tools): such a
    tool is never sent with `"strict": true`.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = True


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallsReady:
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class TurnFinished:
    finish_reason: str
    usage: Usage
    model: str = ""
    vendor_state: VendorState | None = None
    outcome: str = COMPLETE
    # FAILED only: the vendor says asking again may succeed.
    transient: bool = False


@dataclass(frozen=True, slots=True)
class Failover:
    """The default provider `source` failed before its answer began; `target` answers
    instead, from the same messages (bot/llm/providers.py). Comes before `target`'s
    events."""

    source: str
    target: str


StreamEvent = TextDelta | ReasoningDelta | ToolCallsReady | TurnFinished | Failover


class Provider(Protocol):
    model: str

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> AsyncIterator[StreamEvent]:
        """One model call; see the module docstring for the event order. `model`, when
        set, replaces the configured model for this call."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
