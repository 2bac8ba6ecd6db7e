"""A turn's rounds, and how the turn ends.

Each round streams the model's answer to the surface. An answer without tool calls is
stored (with its usage) in one transaction and ends the turn; tool calls get unique ids,
checks, confirmations and concurrent runs (bot/turn/tool_round.py), and the assistant
message with every result (and the usage) is stored in one transaction before the model
is asked again. A turn ends answered, over its budget, unfinished (cut off, failed,
stopped at the length limit or by a content filter: told in a note after what the user
saw), out of rounds, or stopped by its user (what they saw is stored with a mark; a round
cut short never is).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from bot.approvals.gate import Approvals
from bot.config import BotSettings
from bot.domain import (
    ChatMessage,
    IncomingMessage,
    InputAnswer,
    InputQuestion,
    Role,
    ToolContext,
    ToolResult,
    ToolServices,
    Usage,
)
from bot.i18n import N_, _
from bot.llm.base import FAILED, FILTERED, INTERRUPTED, LENGTH, REFUSED, Provider, ToolSpec
from bot.ops.observe import Observer
from bot.policy.limits import Admission, Limits
from bot.storage import ConversationInfo, ConversationStore, StoredMessage, UsageEntry
from bot.surface import NO_ANSWER, Surface
from bot.toolkit import Tool, ToolRegistry
from bot.turn.answer import ModelAnswer, call_model
from bot.turn.context import estimate_tokens, message_tokens, zone
from bot.turn.durable import TurnTicket
from bot.turn.provenance import follows_outside
from bot.turn.tool_round import RoundRules, ids_in, prepare_round, run_round

# The turn's log lines, wherever written, under the one logger operators filter by.
log = logging.getLogger("bot.turn.engine")

CUT_OFF_NOTE = N_(
    "(The answer was cut off here: the model stopped before finishing. Please ask again.)"
)
# What the user is told, after what they saw, of an answer that did not finish.
UNFINISHED_NOTES = {
    INTERRUPTED: CUT_OFF_NOTE,
    LENGTH: N_("(The answer stopped here: it reached the model's length limit.)"),
    FILTERED: N_("(The model's provider stopped this answer with its content filter.)"),
    REFUSED: N_("(The model declined to answer this request.)"),
    FAILED: N_(
        "(The answer stopped here: the model's provider failed while answering. Please ask again.)"
    ),
}
# What the history says of a stopped turn (the model reads it).
STOPPED_MARK = "(The user stopped this answer before it was finished.)"


@dataclass(slots=True)
class TurnOutcome:
    """What a turn did: for adapters that need the text, for tests and benchmarks."""

    text: str = ""
    rounds: int = 0
    usage: Usage = field(default_factory=Usage)
    tool_results: list[ToolResult] = field(default_factory=list)
    error: str = ""
    provider_seconds: float = 0.0
    total_seconds: float = 0.0
    stopped: bool = False  # by its user
    unstored: bool = False  # answered, but the answer is missing from the history


@dataclass(slots=True, kw_only=True)
class TurnRounds:
    """One turn's round loop: what it reads, and what it has shown so far (`visible`,
    whose first `notes` are the turn's own notes, such as a voice note's transcript)."""

    provider: Provider
    observer: Observer
    store: ConversationStore
    settings: BotSettings
    registry: ToolRegistry
    limits: Limits | None
    admission: Admission | None
    message: IncomingMessage
    surface: Surface
    outcome: TurnOutcome
    info: ConversationInfo
    model: str
    context: list[ChatMessage]
    specs: list[ToolSpec]
    offered: dict[str, Tool]
    rules: RoundRules
    approvals: Approvals
    services: ToolServices
    stop_requested: Callable[[], bool]
    ticket: TurnTicket | None
    visible: list[str]
    notes: int

    @property
    def turn_id(self) -> int | None:
        return self.ticket.id if self.ticket is not None else None

    async def run(self, first_round: int) -> None:
        try:
            for number in range(first_round, self.settings.max_tool_rounds + 1):
                if await self._round(number):
                    return
            await self._out_of_rounds()
        except asyncio.CancelledError:
            if not self.stop_requested():
                raise
            await self._mark_stopped()
            self.outcome.stopped = True
            raise

    async def _round(self, number: int) -> bool:
        """One round; True when the turn ended in it."""
        self.outcome.rounds = number
        over = await self._top_up()
        if over is not None:
            await self._over_budget(over)
            return True
        answer = await call_model(
            self.provider,
            self.observer,
            self.context,
            self.specs,
            self.surface,
            self.visible,
            self.model,
        )
        self.outcome.provider_seconds += answer.seconds
        self.outcome.usage += answer.usage
        info = self.info
        usage = UsageEntry(
            info.user_id, info.channel_id, info.conversation_id, answer.model, answer.usage
        )
        if not answer.finished:
            await self._unfinished(answer.text, answer.outcome, usage)
            return True
        if not answer.calls:
            await self._answered(answer, usage)
            return True
        await self._run_calls(number, answer, usage)
        return False

    async def _top_up(self) -> str | None:
        """Hold what the next model call may use (bot/policy/limits.py), or why it may not run."""
        if self.admission is None or self.limits is None:
            return None
        tokens = sum(message_tokens(item) for item in self.context)
        tokens += sum(
            estimate_tokens(f"{spec.name} {spec.description} {spec.parameters}")
            for spec in self.specs
        )
        return await self.limits.top_up(self.admission, tokens)

    async def _run_calls(self, number: int, answer: ModelAnswer, usage: UsageEntry) -> None:
        """The answer's tool calls run, and the round stored in one transaction."""
        prepared = prepare_round(
            answer.calls, ids_in(self.context), self.settings.max_tool_argument_chars
        )
        if prepared.renamed:
            log.info("gave %d tool call(s) a fresh id (empty or repeated)", prepared.renamed)
        assistant = ChatMessage(
            Role.ASSISTANT,
            answer.text,
            tool_calls=prepared.calls,
            vendor_state=answer.vendor_state,
        )
        results = await run_round(
            prepared,
            self.offered,
            self.rules,
            self.message.user,
            self._tool_context(),
            self.surface,
            self._approve,
            journal=self.ticket.journal(number) if self.ticket is not None else None,
        )
        for call, result in zip(prepared.calls, results, strict=True):
            # A name the model made up is not a label of its own.
            label = call.name if self.registry.get(call.name) is not None else "(unknown)"
            self.observer.tool_call(label, failed=result.is_error)
        self.outcome.tool_results.extend(results)
        result_messages = [
            ChatMessage(
                Role.TOOL,
                r.content,
                tool_call_id=r.call_id,
                name=r.name,
                is_error=r.is_error,
            )
            for r in results
        ]
        round_messages = [assistant, *result_messages]
        await self.store.append(
            self.info.conversation_id,
            [StoredMessage(m, message_tokens(m)) for m in round_messages],
            usage=usage,
            turn_id=self.turn_id,
        )
        self.context.extend(round_messages)

    async def _approve(self, item: Tool, arguments: BaseModel) -> bool:
        """Whether this call may run, asking the user if it must (bot/approvals/gate.py); the
        observer counts the questions waiting for an answer."""
        message = self.message
        self.observer.approval_waiting(+1)
        try:
            allowed = await self.approvals.ask(
                self.surface,
                message.user,
                message.chat,
                self.info.channel_id,
                item,
                arguments,
                follows_outside(message, self.context, self.registry),
            )
        finally:
            self.observer.approval_waiting(-1)
        if not allowed:
            log.info("%s did not approve a %s call", message.user.qualified_id, item.name)
        return allowed

    def _tool_context(self) -> ToolContext:
        message, surface = self.message, self.surface
        timezone = self.info.timezone or self.settings.default_timezone

        async def ask(question: InputQuestion) -> InputAnswer:
            # Bound here to the person whose turn this is, in their chat.
            return await surface.ask(message.user, question)

        return ToolContext(
            user=message.user,
            chat=message.chat,
            timezone=timezone,
            now=datetime.now(UTC).astimezone(zone(timezone)),
            conversation_id=self.info.conversation_id,
            thread_key=message.thread_key,
            services=self.services,
            ask=ask,
        )

    async def _answered(self, answer: ModelAnswer, usage: UsageEntry) -> None:
        assistant = ChatMessage(Role.ASSISTANT, answer.text, vendor_state=answer.vendor_state)
        try:
            await self.store.append(
                self.info.conversation_id,
                [StoredMessage(assistant, message_tokens(assistant))],
                usage=usage,
                turn_id=self.turn_id,
            )
        except Exception:
            # The user has read the whole answer: "something went wrong" on top of it
            # would be false, and the turn is settled as answered (bot/turn/durable.py
            # `Settler`), so it is not answered again either. Only the history lacks it.
            log.exception("the answer was shown but could not be stored; delivering it anyway")
            self.outcome.unstored = True
        if len(self.visible) == self.notes:
            # An empty answer would be an empty chat message, which platforms refuse.
            log.warning("the model ended the turn without any text")
            self.outcome.error = _(NO_ANSWER)  # shown, not an answer (follow-ups retry)
            await self.surface.stream(self.outcome.error)
            self.visible.append(self.outcome.error)
        await self._finish()

    async def _over_budget(self, refusal: str) -> None:
        """The budget cannot cover the next model call: say so, and keep the sentence in
        the conversation as the answer (so the question does not look unanswered)."""
        note = ChatMessage(Role.ASSISTANT, refusal)
        await self.store.append(
            self.info.conversation_id,
            [StoredMessage(note, message_tokens(note))],
            turn_id=self.turn_id,
        )
        self.outcome.error = refusal
        await self._say(refusal)

    async def _unfinished(self, shown: str, how: str, usage: UsageEntry) -> None:
        """Tell the user, after what they saw, why the answer did not finish; store what
        they saw with that note, so the next turn's history says it was not finished. A
        refusal, or an answer with nothing shown, stores nothing: its question drops out
        of later requests (bot/storage/rows.py `arranged`). The tokens it used
        count either way."""
        note = _(UNFINISHED_NOTES[how])
        log.warning("the model's answer did not finish (%s, %d characters shown)", how, len(shown))
        if shown and how != REFUSED:
            record = ChatMessage(Role.ASSISTANT, f"{shown}\n\n{note}")
            await self.store.append(
                self.info.conversation_id,
                [StoredMessage(record, message_tokens(record))],
                usage=usage,
                turn_id=self.turn_id,
            )
        elif usage.usage.prompt_tokens or usage.usage.completion_tokens:
            await self.store.record_usage(usage)
        self.outcome.error = note  # shown, but not an answer (follow-ups retry)
        await self._say(note)

    async def _out_of_rounds(self) -> None:
        note = _(
            "I stopped after {limit} rounds of tool calls without reaching an answer. "
            "Try asking for less at once, or rephrase the request.",
            limit=self.settings.max_tool_rounds,
        )
        stopped = ChatMessage(Role.ASSISTANT, note)
        await self.store.append(
            self.info.conversation_id,
            [StoredMessage(stopped, message_tokens(stopped))],
            turn_id=self.turn_id,
        )
        await self._say(note)

    async def _mark_stopped(self) -> None:
        """What the user saw, then the mark: a round cut short was never stored."""
        seen = "\n\n".join(self.visible)
        record = ChatMessage(Role.ASSISTANT, f"{seen}\n\n{STOPPED_MARK}".strip())
        await self.store.append(
            self.info.conversation_id,
            [StoredMessage(record, message_tokens(record))],
            turn_id=self.turn_id,
        )

    async def _say(self, text: str) -> None:
        """`text` after what was shown, and the turn finished."""
        await self.surface.stream(("\n\n" if self.visible else "") + text)
        self.visible.append(text)
        await self._finish()

    async def _finish(self) -> None:
        self.outcome.text = "\n\n".join(self.visible)
        await self.surface.finish(self.outcome.text)
