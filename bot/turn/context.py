"""What the model sees: the system prompt, trimmed history and the new message.

History is trimmed to a token budget from the newest message backwards, in whole
*exchanges*: an assistant message that called tools travels with all its tool results,
so trimming can never separate a call from its result (vendors reject the whole request
when it does). A call whose result was never stored (a crash mid-round, or data written
by an older version) is answered with a synthetic error result rather than sent bare, and
user messages left without an answer are merged with the next, so roles alternate.

Token counts are estimates (about four characters a token for alphabetic scripts, one
a character for CJK): close enough for a budget, and no tokenizer tables on the hot path.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from bot.domain import ChatMessage, Role, ToolCall
from bot.storage.memory import TurnMemory

MESSAGE_OVERHEAD_TOKENS = 4
INTERRUPTED_RESULT = "No result: the call was interrupted before it finished. Do not assume it ran."


def estimate_tokens(text: str) -> int:
    wide = sum(1 for char in text if ord(char) >= 0x2E80)
    return (len(text) - wide + 3) // 4 + wide


def message_tokens(message: ChatMessage) -> int:
    tokens = MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message.content)
    for call in message.tool_calls:
        tokens += (
            MESSAGE_OVERHEAD_TOKENS
            + estimate_tokens(call.name)
            + estimate_tokens(call.raw_arguments)
        )
    return tokens


def repair(history: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Make history valid for every vendor: each tool call followed by its result.

    Results missing after an assistant's calls are synthesised; tool messages whose
    call is not right before them (orphans) are dropped.
    """
    repaired: list[ChatMessage] = []
    index = 0
    while index < len(history):
        message = history[index]
        index += 1
        if message.role is Role.TOOL:
            continue  # an orphan: its call was not immediately before it
        repaired.append(message)
        if message.role is not Role.ASSISTANT or not message.tool_calls:
            continue
        results: dict[str, ChatMessage] = {}
        while index < len(history) and history[index].role is Role.TOOL:
            results[history[index].tool_call_id] = history[index]
            index += 1
        repaired.extend(
            results.get(call.id) or interrupted_result(call) for call in message.tool_calls
        )
    return repaired


def interrupted_result(call: ToolCall) -> ChatMessage:
    return ChatMessage(
        Role.TOOL, INTERRUPTED_RESULT, tool_call_id=call.id, name=call.name, is_error=True
    )


def exchanges(history: Sequence[ChatMessage]) -> list[list[ChatMessage]]:
    """Split repaired history into units that must be kept or dropped together."""
    units: list[list[ChatMessage]] = []
    for message in history:
        if message.role is Role.TOOL and units:
            units[-1].append(message)
        else:
            units.append([message])
    return units


def build_context(
    system_prompt: str,
    history: Sequence[tuple[ChatMessage, int]],
    new_messages: Sequence[ChatMessage],
    budget_tokens: int,
) -> list[ChatMessage]:
    """System prompt + the newest history that fits `budget_tokens` + `new_messages`.

    `history` pairs each message with its stored token estimate. The system prompt and
    the new messages are always kept, even over budget: the vendor then says so.
    """
    tokens_of = {id(message): tokens for message, tokens in history}
    system = ChatMessage(Role.SYSTEM, system_prompt)
    remaining = (
        budget_tokens - message_tokens(system) - sum(message_tokens(m) for m in new_messages)
    )
    kept: list[list[ChatMessage]] = []
    for unit in reversed(exchanges(repair([message for message, _ in history]))):
        cost = sum(tokens_of.get(id(message)) or message_tokens(message) for message in unit)
        if cost > remaining:
            break
        remaining -= cost
        kept.append(unit)
    kept.reverse()
    # A context that starts with the assistant confuses some vendors; start at a user turn.
    while kept and kept[0][0].role is not Role.USER:
        kept.pop(0)
    return alternate([system, *(message for unit in kept for message in unit), *new_messages])


def alternate(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Merge user messages that follow each other into one.

    A turn that failed before the model answered (a provider error, an answer cut off
    twice) leaves its user message without a reply, so the next one follows it directly;
    deepseek-reasoner refuses that ("does not support successive user or assistant
    messages") and Anthropic merges them anyway. Both texts are kept, in order.
    """
    merged: list[ChatMessage] = []
    for message in messages:
        previous = merged[-1] if merged else None
        if previous is not None and previous.role is Role.USER and message.role is Role.USER:
            merged[-1] = replace(
                previous,
                content=f"{previous.content}\n\n{message.content}",
                images=previous.images + message.images,
            )
        else:
            merged.append(message)
    return merged


def system_prompt(instructions: str, timezone: str, memory: TurnMemory | None = None) -> str:
    """The instructions, the user's time of day, and what the turn read of memory: the
    facts the user asked to be remembered, and the summary of older messages."""
    now = datetime.now(UTC).astimezone(zone(timezone))
    prompt = (
        f"{instructions}\n\nThe user's timezone is {timezone}; it is now {now:%A %Y-%m-%d %H:%M}."
    )
    if memory is None:
        return prompt
    if memory.facts:
        listed = "\n".join(f"- [{fact.id}] {fact.text}" for fact in memory.facts)
        prompt += f"\n\nWhat the user asked you to remember (ids for the forget tool):\n{listed}"
    if memory.summary is not None and memory.summary.text:
        prompt += (
            "\n\nA summary of the earlier part of this conversation (older messages "
            f"are not shown):\n{memory.summary.text}"
        )
    return prompt


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The timezone of that name, or UTC for a name this system does not know."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
