"""Rolling summaries: what a long conversation's older part said, in a few sentences.

When a turn's history no longer fits the context budget, the older half of what is not
yet summarised (whole exchanges: a tool call always travels with its result) is
summarised by the model together with the previous summary, after the turn, in a task
of its own: the user never waits for it. The next turns offer the summary ahead of the
messages after it. Half, not just what fell out, so one summary serves many turns
instead of one call per turn.

A summary failure is logged and tried again at the next overflow; the conversation then
simply behaves as it did before summaries existed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from bot.domain import ChatMessage, Role, Usage
from bot.llm.base import COMPLETE, Provider, TextDelta, TurnFinished
from bot.storage.memory import MemoryStore, Summary
from bot.storage.repository import ConversationInfo, ConversationStore
from bot.storage.rows import StoredMessage, UsageEntry
from bot.turn.context import estimate_tokens

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "You keep the notes of a conversation between a user and an assistant, for the "
    "assistant's own later use. Write a summary of the conversation below (and of the "
    "earlier summary, if one is given) in at most 200 words, in the language the user "
    "writes in: who the user is, what they asked for, what was decided or done (tools "
    "called and what came of them), names, places, numbers and open questions. Leave out "
    "passwords, keys, tokens and anything the user asked to forget. Plain text only."
)
TOOL_RESULT_CHARS = 400


def units_of(history: Sequence[StoredMessage]) -> list[list[StoredMessage]]:
    """Stored history in exchanges: a message and the tool results that follow it."""
    units: list[list[StoredMessage]] = []
    for stored in history:
        if stored.message.role is Role.TOOL and units:
            units[-1].append(stored)
        else:
            units.append([stored])
    return units


def older_half(history: Sequence[StoredMessage], budget_tokens: int) -> list[StoredMessage]:
    """The oldest whole exchanges to summarise so that what stays is at most half of
    `budget_tokens`, ending before a user message (the next context starts with one)."""
    units = units_of(history)
    remaining = sum(stored.tokens for stored in history)
    cut = 0
    while cut < len(units) and remaining > budget_tokens // 2:
        remaining -= sum(stored.tokens for stored in units[cut])
        cut += 1
    while cut < len(units) and units[cut][0].message.role is not Role.USER:
        cut += 1
    return [stored for unit in units[:cut] for stored in unit]


def transcript(messages: Sequence[StoredMessage]) -> str:
    lines: list[str] = []
    for stored in messages:
        message = stored.message
        if message.role is Role.USER:
            lines.append(f"User: {message.content}")
        elif message.role is Role.ASSISTANT:
            if message.content:
                lines.append(f"Assistant: {message.content}")
            for call in message.tool_calls:
                lines.append(f"Assistant called {call.name} {call.raw_arguments}")
        elif message.role is Role.TOOL:
            result = message.content[:TOOL_RESULT_CHARS]
            lines.append(f"{message.name or 'tool'} returned: {result}")
    return "\n".join(lines)


class Summariser:
    """Summarises conversations in the background, one task per conversation at a time."""

    def __init__(
        self,
        provider: Provider,
        store: ConversationStore,
        memory: MemoryStore,
        *,
        budget_tokens: int,
    ) -> None:
        self._provider = provider
        self._store = store
        self._memory = memory
        self._budget = budget_tokens
        self._running: dict[int, asyncio.Task[None]] = {}
        self.written = 0  # summaries stored by this process (benchmarks, metrics)

    def needed(self, unsummarised: Sequence[StoredMessage], fits: int) -> bool:
        """Whether a turn that showed the model only the newest `fits` of `unsummarised`
        (everything after the summary) should start a summary."""
        return fits < len(unsummarised)

    def start(
        self,
        info: ConversationInfo,
        unsummarised: Sequence[StoredMessage],
        previous: Summary | None,
        model: str,
        *,
        after: Coroutine[Any, Any, None],
    ) -> None:
        """Summarise the older half of `unsummarised` once `after` returns (the turn is
        over); a no-op while a summary of this conversation is already being written."""
        part = older_half(unsummarised, self._budget)
        if info.conversation_id in self._running or not part or not part[-1].id:
            after.close()
            return
        task = asyncio.create_task(self._summarise(info, part, previous, model, after))
        self._running[info.conversation_id] = task
        task.add_done_callback(lambda _: self._running.pop(info.conversation_id, None))

    async def _summarise(
        self,
        info: ConversationInfo,
        part: Sequence[StoredMessage],
        previous: Summary | None,
        model: str,
        after: Coroutine[Any, Any, None],
    ) -> None:
        await after
        earlier = f"Earlier summary:\n{previous.text}\n\n" if previous and previous.text else ""
        request = [
            ChatMessage(Role.SYSTEM, INSTRUCTIONS),
            ChatMessage(Role.USER, f"{earlier}Conversation:\n{transcript(part)}"),
        ]
        pieces: list[str] = []
        usage = Usage()
        used_model = model or self._provider.model
        ended = COMPLETE
        try:
            async for event in self._provider.stream(request, [], model=model):
                if isinstance(event, TextDelta):
                    pieces.append(event.text)
                elif isinstance(event, TurnFinished):
                    usage = event.usage
                    used_model = event.model or used_model
                    ended = event.outcome
        except Exception as exc:  # a summary is a nicety: never let it break anything
            log.warning("summary of conversation %d failed: %s", info.conversation_id, exc)
            return
        text = "".join(pieces).strip()
        await self._store.record_usage(
            UsageEntry(info.user_id, info.channel_id, info.conversation_id, used_model, usage)
        )
        if not text:
            log.warning("summary of conversation %d came back empty", info.conversation_id)
            return
        if ended != COMPLETE:  # cut at the length limit, filtered, failed: not a summary
            log.warning(
                "summary of conversation %d did not finish (%s)", info.conversation_id, ended
            )
            return
        saved = await self._memory.save_summary(
            info.conversation_id, part[-1].id, text, estimate_tokens(text)
        )
        self.written += saved
        log.info(
            "summarised %d message(s) of conversation %d%s",
            len(part),
            info.conversation_id,
            "" if saved else " (a newer summary was already stored)",
        )

    async def drain(self, within: float) -> None:
        """Let running summaries finish (shutdown), at most `within` seconds."""
        tasks = list(self._running.values())
        if tasks:
            await asyncio.wait(tasks, timeout=within)

    def cancel(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
