"""The turn loop: one incoming message in, one streamed answer out.

    lock the conversation (turns of one conversation never interleave)
    resolve user, channel, conversation; store the user's message
    offer the channel's enabled tools; build the trimmed context
    loop, at most `max_tool_rounds` times:
        stream the model's answer to the surface
        no tool calls: store the answer (+ usage) in one transaction, finish
        tool calls: give each a unique id, check, confirm side effects, run concurrently
                    (bot/turn/tool_round.py); store the assistant message and every result
                    (+ usage) in one transaction, then call the model again

A stream cut off before its terminator (`AnswerCutOff`), or failed in a way its vendor
calls transient, is retried once if none of its text was shown (bot/turn/answer.py). An answer
that did not finish (cut off, failed, stopped at the length limit or by a content
filter) is told to the user in a note after what they saw, and what they saw is stored
with that note, never as a finished answer; a refused answer is not stored at all (the
Messages API asks for the refused turn to be left out of later requests). A scheduled
turn (`run_prompt`, a follow-up) is not offered the tools that create or cancel scheduled work.

A turn its user stops (`stop`: Slack's stop button) is cancelled where it is; its
question stays in the history, followed by what the user saw and a note that they
stopped it (a round cut short is never stored, so no tool call is left without its
result), and the user is told. The turn is then over: never resumed.

The engine knows no platform and no vendor: it sees `IncomingMessage`, `Surface`,
`Provider` and `Tool`. Every failure ends as a message to the user (never a traceback)
and a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from bot.approvals.gate import Approvals
from bot.config import BotSettings
from bot.domain import (
    ChatMessage,
    ChatRef,
    IncomingMessage,
    InputAnswer,
    InputQuestion,
    Role,
    ToolContext,
    ToolResult,
    ToolServices,
    Usage,
    UserRef,
)
from bot.errors import ProviderError
from bot.i18n import N_, _
from bot.llm.base import FAILED, FILTERED, INTERRUPTED, LENGTH, REFUSED, Provider, ToolSpec
from bot.ops.logs import loggable
from bot.ops.observe import TURN_ID, Observer, new_turn_id
from bot.policy.limits import Admission, Limits
from bot.policy.tools import AllowAllTools, ChannelProfile, ToolPolicy, for_scheduled_turn
from bot.storage import ConversationInfo, ConversationStore, StoredMessage, UsageEntry
from bot.storage.memory import MemoryStore, TurnMemory, TurnMemoryReader
from bot.surface import NO_ANSWER, Surface
from bot.toolkit import Tool, ToolRegistry
from bot.turn.answer import call_model
from bot.turn.context import build_context, estimate_tokens, message_tokens
from bot.turn.durable import TurnTicket
from bot.turn.media import MediaReader, PreparedTurn
from bot.turn.summaries import Summariser
from bot.turn.tool_choice import most_relevant
from bot.turn.tool_round import RoundRules, ids_in, prepare_round, run_round

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = N_(
    "Sorry, something went wrong on my side. The operators can find details in the logs."
)
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
# Messages of history that, with the new one, choose the tools when there are too many.
RELEVANCE_HISTORY = 4
# What the history says of a stopped turn (the model reads it), and what the user is told.
STOPPED_MARK = "(The user stopped this answer before it was finished.)"
STOPPED_NOTE = N_("Stopped. Your question is kept: ask again, or ask something else.")


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


class Engine:
    """Runs turns. One per application; safe to share between adapters."""

    def __init__(
        self,
        *,
        provider: Provider,
        store: ConversationStore,
        tools: ToolRegistry,
        settings: BotSettings,
        policy: ToolPolicy | None = None,
        limits: Limits | None = None,
        services: ToolServices | None = None,
        observer: Observer | None = None,
        log_bodies: bool = False,
        memory: MemoryStore | None = None,
        summariser: Summariser | None = None,
        media: MediaReader | None = None,
        approvals: Approvals | None = None,
    ) -> None:
        self.provider = provider
        self.media = media
        # Without a database behind it (tests of the loop) questions live in memory.
        self.approvals = (
            approvals
            if approvals is not None
            else Approvals(None, None, timeout_seconds=settings.confirm_timeout_seconds)
        )
        self.observer = observer or Observer()
        self.log_bodies = log_bodies
        self.services = services or ToolServices()
        self._store = store
        self.tools = tools
        self.settings = settings
        self.policy = policy or AllowAllTools()
        self.limits = limits
        self._memory = memory
        self._summariser = summariser
        # Built on first use: tools may come and go (an MCP server's list changes).
        self._specs: dict[str, tuple[Tool, ToolSpec]] = {}
        self._locks = KeyedLocks()
        self._in_flight = 0
        self._turn_tasks: set[asyncio.Task[object]] = set()
        # The turn running in each conversation, and the ones their users asked to stop.
        self._running: dict[tuple[str, str, str, str], asyncio.Task[object]] = {}
        self._stopping: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def turns_in_flight(self) -> int:
        return self._in_flight

    async def drain(self, within: float) -> bool:
        """Wait until no turn runs (at most `within` seconds); True if none does."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    def cancel_turns(self) -> int:
        """Cancel the turns still running (shutdown after the grace period); returns how
        many. Each round is stored in its own transaction, so nothing is half-written."""
        tasks = [task for task in self._turn_tasks if not task.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)

    def stop(self, key: tuple[str, str, str, str]) -> bool:
        """Stop the turn running in the conversation `key` (`conversation_key`), at its
        user's request; False if none runs."""
        task = self._running.get(key)
        if task is None or task.done() or task in self._stopping:
            return False
        self._stopping.add(task)
        task.cancel()
        return True

    def running_in(self, platform: str, chat: str, thread_key: str) -> bool:
        """Whether any user's turn runs in this chat and thread now."""
        return any(
            key[:3] == (platform, chat, thread_key) and not task.done()
            for key, task in self._running.items()
        )

    def _stop_requested(self) -> bool:
        """Whether the cancellation being handled is a user's stop (and take it)."""
        task = asyncio.current_task()
        if task is None or task not in self._stopping:
            return False
        self._stopping.discard(task)
        task.uncancel()
        return True

    def _spec(self, item: Tool) -> ToolSpec:
        cached = self._specs.get(item.name)
        if cached is None or cached[0] is not item:
            spec = ToolSpec(item.name, item.description, item.json_schema(), strict=item.strict)
            cached = self._specs[item.name] = (item, spec)
        return cached[1]

    async def handle(
        self, message: IncomingMessage, surface: Surface, *, ticket: TurnTicket | None = None
    ) -> TurnOutcome:
        """Run one turn for `message`, answering through `surface`; `ticket`: the durable
        turn (bot/turn/durable.py) it is, or is resumed as."""
        return await self._handle(message, surface, scheduled=False, ticket=ticket)

    async def _handle(
        self,
        message: IncomingMessage,
        surface: Surface,
        *,
        scheduled: bool,
        ticket: TurnTicket | None = None,
    ) -> TurnOutcome:
        started = time.perf_counter()
        outcome = TurnOutcome()
        key = conversation_key(message)
        token = TURN_ID.set(new_turn_id())
        task = asyncio.current_task()
        if task is not None:
            self._turn_tasks.add(task)
        self._in_flight += 1
        self._idle.clear()
        self.observer.turn_started()
        try:
            if self.log_bodies:
                log.info("turn from %s: %s", message.user.qualified_id, loggable(message.text))
            else:
                log.info(
                    "turn from %s (%d chars, %d file(s))",
                    message.user.qualified_id,
                    len(message.text),
                    len(message.attachments),
                )
            # In-process first (cheap), then across replicas (a database lock on PostgreSQL).
            async with self._locks.hold(key):
                if task is not None:
                    self._running[key] = task
                try:
                    async with self._store.conversation_lock(key):
                        await self._run_turn(
                            message, surface, outcome, scheduled=scheduled, ticket=ticket
                        )
                except asyncio.CancelledError:
                    if not outcome.stopped and not self._stop_requested():
                        raise
                    # Stopped before (or after) the rounds that mark the history.
                    log.info("turn stopped by its user")
                    outcome.stopped = True
                    await surface.fail(_(STOPPED_NOTE))
                except ProviderError as exc:
                    log.warning("turn failed: provider error: %s", exc)
                    outcome.error = _(exc.user_message)
                    await surface.fail(outcome.error)
                except Exception:
                    log.exception("turn failed unexpectedly")
                    outcome.error = _(UNEXPECTED_ERROR)
                    await surface.fail(outcome.error)
        finally:
            if task is not None and self._running.get(key) is task:
                del self._running[key]
            if task is not None:
                self._stopping.discard(task)
            outcome.total_seconds = time.perf_counter() - started
            self.observer.turn_finished(
                message.platform, "error" if outcome.error else "ok", outcome.total_seconds
            )
            self._in_flight -= 1
            if task is not None:
                self._turn_tasks.discard(task)
            if self._in_flight == 0:
                self._idle.set()
            log.info(
                "turn done in %.2f s: %d round(s), %d tool call(s)%s",
                outcome.total_seconds,
                outcome.rounds,
                len(outcome.tool_results),
                ", failed" if outcome.error else "",
            )
            TURN_ID.reset(token)
        return outcome

    async def run_prompt(
        self, user: UserRef, chat: ChatRef, prompt: str, surface: Surface, *, thread_key: str = ""
    ) -> TurnOutcome:
        """A turn nobody typed just now (a scheduled follow-up): `prompt` is run as the
        user's message in their conversation in `chat`, answered through `surface`,
        without the tools that create or cancel scheduled work."""
        message = IncomingMessage(chat=chat, user=user, text=prompt, thread_key=thread_key)
        return await self._handle(message, surface, scheduled=True)

    async def offered_tools(self, message: IncomingMessage) -> list[Tool]:
        """The tools a turn from this message's chat would be offered (for /tools)."""
        channel_id = await self._store.channel_id(message.chat)
        return await self.policy.enabled_tools(message, channel_id, list(self.tools))

    async def reset(self, message: IncomingMessage) -> bool:
        """Start a new conversation for this user here; the old one stays stored."""
        key = conversation_key(message)
        async with self._locks.hold(key):
            return await self._store.reset_conversation(message)

    async def tool_overview(self, message: IncomingMessage) -> list[tuple[Tool, bool]]:
        """Every registered tool and whether the message's chat may use it."""
        enabled = {item.name for item in await self.offered_tools(message)}
        return [(item, item.name in enabled) for item in self.tools]

    async def _run_turn(
        self,
        message: IncomingMessage,
        surface: Surface,
        outcome: TurnOutcome,
        *,
        scheduled: bool,
        ticket: TurnTicket | None,
    ) -> None:
        user_id, channel_id = await self._store.ids_of(message.user, message.chat)
        profile = await self.policy.profile(channel_id)
        if self.limits is None:
            await self._converse(
                message, surface, outcome, profile, user_id, channel_id, scheduled, ticket, None
            )
            return
        # Taken in the database before the model is called, settled once the turn's
        # usage is stored: concurrent turns and replicas share the budgets (bot/policy/limits.py).
        admission = await self.limits.admit(message, user_id, channel_id, profile.limits)
        if admission.refusal:
            log.info(
                "turn refused by limits for %s:%s: %s",
                message.user.platform,
                message.user.platform_user_id,
                admission.refusal,
            )
            outcome.error = admission.refusal
            await surface.fail(admission.refusal)
            return
        async with self.limits.holding(admission):
            await self._converse(
                message,
                surface,
                outcome,
                profile,
                user_id,
                channel_id,
                scheduled,
                ticket,
                admission,
            )

    async def _converse(
        self,
        message: IncomingMessage,
        surface: Surface,
        outcome: TurnOutcome,
        profile: ChannelProfile,
        user_id: int,
        channel_id: int,
        scheduled: bool,
        ticket: TurnTicket | None,
        admission: Admission | None,
    ) -> None:
        words = await self._prepare(message, profile)
        if words.refusal:
            outcome.error = words.refusal
            await surface.fail(words.refusal)
            return
        # History keeps words ("[image]" and the caption); only this turn sends pictures.
        user_message = ChatMessage(Role.USER, words.record)
        turn_message = ChatMessage(Role.USER, words.text, images=words.images)
        turn_id = ticket.id if ticket is not None else None
        enabled = await self.policy.enabled_tools(message, channel_id, list(self.tools))
        info, history, own, memory = await self._store.begin_turn(
            message,
            StoredMessage(user_message, message_tokens(user_message)),
            turn_id=turn_id,
            resumed=ticket is not None and ticket.resumed,
            also=self._memory_reader(message, user_id, enabled),
        )
        # A resumed turn goes on from what it stored: its question (stored once) and the
        # tool rounds it finished before its process died.
        mine = [stored.message for stored in own] or [turn_message]
        if mine[-1].role is Role.ASSISTANT and not mine[-1].tool_calls:
            # Answered and stored, then the process died before the reply was delivered.
            await surface.start()
            await surface.stream(mine[-1].content)
            outcome.text = mine[-1].content
            await surface.finish(outcome.text)
            return
        first_round = 1 + sum(1 for m in mine if m.role is Role.ASSISTANT and m.tool_calls)
        withheld: dict[str, str] = {}
        if scheduled:
            enabled, withheld = for_scheduled_turn(enabled)
        recent = " ".join(stored.message.content for stored in history[-RELEVANCE_HISTORY:])
        enabled = most_relevant(enabled, f"{words.text} {recent}", self.settings.max_offered_tools)
        offered = {item.name: item for item in enabled}
        rules = RoundRules(
            max_calls=self.settings.max_tool_calls_per_round,
            max_argument_chars=self.settings.max_tool_argument_chars,
            timeout_seconds=self.settings.tool_timeout_seconds,
            withheld=withheld,
        )
        specs = [self._spec(item) for item in offered.values()]
        summary = memory.summary if memory is not None else None
        unsummarised = (
            [stored for stored in history if stored.id > summary.through_message_id]
            if summary is not None
            else history
        )
        # An empty summary is a watermark: the messages before it are still shown while
        # they fit, but never summarised again (the user asked to forget something).
        shown = unsummarised if summary is not None and summary.text else history
        context = build_context(
            self._system_prompt(info, profile, memory),
            [(stored.message, stored.tokens) for stored in shown],
            mine,
            self.settings.context_tokens,
        )
        if self._summariser is not None and self.settings.summaries:
            in_context = {id(item) for item in context}
            fits = sum(1 for stored in unsummarised if id(stored.message) in in_context)
            if self._summariser.needed(unsummarised, fits):
                self._summariser.start(
                    info,
                    unsummarised,
                    summary,
                    profile.model or "",
                    after=self._locks.idle(conversation_key(message)),
                )
        await surface.start()
        visible: list[str] = []
        for number, note in enumerate(words.notes):
            await surface.stream(("\n\n" if number else "") + note)
            visible.append(note)
        try:
            for round_number in range(first_round, self.settings.max_tool_rounds + 1):
                outcome.rounds = round_number
                over = await self._top_up(admission, context, specs)
                if over is not None:
                    await self._end_over_budget(info, over, surface, visible, outcome, turn_id)
                    return
                answer = await call_model(
                    self.provider,
                    self.observer,
                    context,
                    specs,
                    surface,
                    visible,
                    profile.model or "",
                )
                outcome.provider_seconds += answer.seconds
                outcome.usage += answer.usage
                usage_entry = UsageEntry(
                    info.user_id, info.channel_id, info.conversation_id, answer.model, answer.usage
                )
                if not answer.finished:
                    await self._end_unfinished(
                        info, answer.text, answer.outcome, surface, visible, outcome, turn_id,
                        usage_entry,
                    )  # fmt: skip
                    return
                if not answer.calls:
                    assistant = ChatMessage(
                        Role.ASSISTANT, answer.text, vendor_state=answer.vendor_state
                    )
                    await self._store.append(
                        info.conversation_id,
                        [StoredMessage(assistant, message_tokens(assistant))],
                        usage=usage_entry,
                        turn_id=turn_id,
                    )
                    if len(visible) == len(words.notes):
                        # An empty answer would be an empty chat message, which platforms refuse.
                        log.warning("the model ended the turn without any text")
                        outcome.error = _(NO_ANSWER)  # shown, not an answer (follow-ups retry)
                        await surface.stream(outcome.error)
                        visible.append(outcome.error)
                    outcome.text = "\n\n".join(visible)
                    await surface.finish(outcome.text)
                    return
                prepared = prepare_round(
                    answer.calls, ids_in(context), self.settings.max_tool_argument_chars
                )
                if prepared.renamed:
                    log.info(
                        "gave %d tool call(s) a fresh id (empty or repeated)", prepared.renamed
                    )
                assistant = ChatMessage(
                    Role.ASSISTANT,
                    answer.text,
                    tool_calls=prepared.calls,
                    vendor_state=answer.vendor_state,
                )
                results = await run_round(
                    prepared,
                    offered,
                    rules,
                    message.user,
                    self._tool_context(message, info, surface),
                    surface,
                    lambda item, arguments: self._approve(surface, message, info, item, arguments),
                    journal=ticket.journal(round_number) if ticket is not None else None,
                )
                for call, result in zip(prepared.calls, results, strict=True):
                    # A name the model made up is not a label of its own.
                    label = call.name if self.tools.get(call.name) is not None else "(unknown)"
                    self.observer.tool_call(label, failed=result.is_error)
                outcome.tool_results.extend(results)
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
                await self._store.append(
                    info.conversation_id,
                    [StoredMessage(m, message_tokens(m)) for m in round_messages],
                    usage=usage_entry,
                    turn_id=turn_id,
                )
                context.extend(round_messages)
            limit = self.settings.max_tool_rounds
            note = _(
                "I stopped after {limit} rounds of tool calls without reaching an answer. "
                "Try asking for less at once, or rephrase the request.",
                limit=limit,
            )
            stopped = ChatMessage(Role.ASSISTANT, note)
            await self._store.append(
                info.conversation_id,
                [StoredMessage(stopped, message_tokens(stopped))],
                turn_id=turn_id,
            )
            await surface.stream(("\n\n" if visible else "") + note)
            visible.append(note)
            outcome.text = "\n\n".join(visible)
            await surface.finish(outcome.text)
        except asyncio.CancelledError:
            if not self._stop_requested():
                raise
            # What the user saw, then the mark: a round cut short was never stored.
            seen = "\n\n".join(visible)
            record = ChatMessage(Role.ASSISTANT, f"{seen}\n\n{STOPPED_MARK}".strip())
            await self._store.append(
                info.conversation_id,
                [StoredMessage(record, message_tokens(record))],
                turn_id=turn_id,
            )
            outcome.stopped = True
            raise

    async def _prepare(self, message: IncomingMessage, profile: ChannelProfile) -> PreparedTurn:
        """The turn's words and pictures: voice notes transcribed, pictures checked and
        kept only for a model that can see (bot/turn/media.py)."""
        if self.media is None or not message.attachments:
            return PreparedTurn(message.text, message.text)
        prepared = await self.media.prepare(message, vision=self.media.vision(profile.vision))
        if prepared.refusal:
            log.info(
                "turn from %s refused: its files could not be used (%s)",
                message.user.qualified_id,
                ", ".join(a.kind.value for a in message.attachments),
            )
        return prepared

    async def _top_up(
        self, admission: Admission | None, context: list[ChatMessage], specs: list[ToolSpec]
    ) -> str | None:
        """Hold what the next model call may use (bot/policy/limits.py), or why it may not run."""
        if admission is None or self.limits is None:
            return None
        tokens = sum(message_tokens(item) for item in context)
        tokens += sum(
            estimate_tokens(f"{spec.name} {spec.description} {spec.parameters}") for spec in specs
        )
        return await self.limits.top_up(admission, tokens)

    async def _end_over_budget(
        self,
        info: ConversationInfo,
        refusal: str,
        surface: Surface,
        visible: list[str],
        outcome: TurnOutcome,
        turn_id: int | None,
    ) -> None:
        """The budget cannot cover the next model call: say so, and keep the sentence in
        the conversation as the answer (so the question does not look unanswered)."""
        note = ChatMessage(Role.ASSISTANT, refusal)
        await self._store.append(
            info.conversation_id, [StoredMessage(note, message_tokens(note))], turn_id=turn_id
        )
        outcome.error = refusal
        await surface.stream(("\n\n" if visible else "") + refusal)
        visible.append(refusal)
        outcome.text = "\n\n".join(visible)
        await surface.finish(outcome.text)

    async def _end_unfinished(
        self,
        info: ConversationInfo,
        shown: str,
        how: str,
        surface: Surface,
        visible: list[str],
        outcome: TurnOutcome,
        turn_id: int | None,
        usage: UsageEntry,
    ) -> None:
        """Tell the user, after what they saw, why the answer did not finish; store what
        they saw with that note, so the next turn's history says it was not finished. A
        refusal, or an answer with nothing shown, stores nothing: its question drops out
        of later requests (bot/storage/repository.py `arranged`). The tokens it used
        count either way."""
        note = _(UNFINISHED_NOTES[how])
        log.warning("the model's answer did not finish (%s, %d characters shown)", how, len(shown))
        if shown and how != REFUSED:
            record = ChatMessage(Role.ASSISTANT, f"{shown}\n\n{note}")
            await self._store.append(
                info.conversation_id,
                [StoredMessage(record, message_tokens(record))],
                usage=usage,
                turn_id=turn_id,
            )
        elif usage.usage.prompt_tokens or usage.usage.completion_tokens:
            await self._store.record_usage(usage)
        await surface.stream(f"\n\n{note}" if visible else note)
        visible.append(note)
        outcome.error = note  # shown, but not an answer (follow-ups retry)
        outcome.text = "\n\n".join(visible)
        await surface.finish(outcome.text)

    async def _approve(
        self,
        surface: Surface,
        message: IncomingMessage,
        info: ConversationInfo,
        item: Tool,
        arguments: BaseModel,
    ) -> bool:
        """Whether this call may run, asking the user if it must (bot/approvals/gate.py); the
        observer counts the questions waiting for an answer."""
        self.observer.approval_waiting(+1)
        try:
            allowed = await self.approvals.ask(
                surface, message.user, message.chat, info.channel_id, item, arguments
            )
        finally:
            self.observer.approval_waiting(-1)
        if not allowed:
            log.info("%s did not approve a %s call", message.user.qualified_id, item.name)
        return allowed

    def _tool_context(
        self, message: IncomingMessage, info: ConversationInfo, surface: Surface
    ) -> ToolContext:
        timezone = info.timezone or self.settings.default_timezone

        async def ask(question: InputQuestion) -> InputAnswer:
            # Bound here to the person whose turn this is, in their chat.
            return await surface.ask(message.user, question)

        return ToolContext(
            user=message.user,
            chat=message.chat,
            timezone=timezone,
            now=datetime.now(UTC).astimezone(_zone(timezone)),
            conversation_id=info.conversation_id,
            thread_key=message.thread_key,
            services=self.services,
            ask=ask,
        )

    def _memory_reader(
        self, message: IncomingMessage, user_id: int, enabled: Sequence[Tool]
    ) -> TurnMemoryReader | None:
        """How the turn reads the conversation's summary and the user's remembered facts,
        when on here: facts only where the channel offers the memory tools (the same
        policy). None when neither is: the turn then reads nothing more."""
        if self._memory is None:
            return None
        facts = any(item.name in MEMORY_TOOLS for item in enabled)
        summary = self._summariser is not None and self.settings.summaries
        if not facts and not summary:
            return None
        return self._memory.reader(user_id, message.chat, facts=facts, summary=summary)

    def _system_prompt(
        self, info: ConversationInfo, profile: ChannelProfile, memory: TurnMemory | None = None
    ) -> str:
        timezone = info.timezone or self.settings.default_timezone
        now = datetime.now(UTC).astimezone(_zone(timezone))
        prompt = (
            f"{profile.system_prompt or self.settings.system_prompt}\n\n"
            f"The user's timezone is {timezone}; it is now {now:%A %Y-%m-%d %H:%M}."
        )
        if memory is None:
            return prompt
        if memory.facts:
            listed = "\n".join(f"- [{fact.id}] {fact.text}" for fact in memory.facts)
            prompt += (
                f"\n\nWhat the user asked you to remember (ids for the forget tool):\n{listed}"
            )
        if memory.summary is not None and memory.summary.text:
            prompt += (
                "\n\nA summary of the earlier part of this conversation (older messages "
                f"are not shown):\n{memory.summary.text}"
            )
        return prompt


def conversation_key(message: IncomingMessage) -> tuple[str, str, str, str]:
    """What identifies a conversation before the database is asked: turns with the same
    key are serialised."""
    return (
        message.platform,
        message.chat.platform_chat_id,
        message.thread_key,
        message.user.platform_user_id,
    )


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


MEMORY_TOOLS = ("remember", "recall", "forget")


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def idle(self, key: Hashable) -> None:
        """Return once nobody who holds or waits for `key` now does (taking it for no
        time): work that must follow a turn without delaying the next one."""
        async with self.hold(key):
            pass

    def __len__(self) -> int:
        return len(self._locks)
