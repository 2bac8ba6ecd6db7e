"""LLM providers: one `Provider` contract, one implementation per API family."""

from bot.llm.base import (
    Provider,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)

__all__ = [
    "Provider",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCallsReady",
    "ToolSpec",
    "TurnFinished",
]
