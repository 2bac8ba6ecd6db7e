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

The rounds, and how a turn ends, are bot/turn/rounds.py; the locks and the register of
running turns bot/turn/locks.py.

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
from collections.abc import Sequence

from bot.approvals.gate import Approvals
from bot.config import BotSettings
from bot.domain import (
    ChatMessage,
    ChatRef,
    IncomingMessage,
    Role,
    ToolServices,
    UserRef,
)
from bot.errors import ProviderError
from bot.i18n import N_, _
from bot.llm.base import Provider, ToolSpec
from bot.ops.logs import loggable
from bot.ops.observe import TURN_ID, Observer, new_turn_id
from bot.policy.limits import Admission, Limits
from bot.policy.tools import AllowAllTools, ChannelProfile, ToolPolicy, for_scheduled_turn
from bot.storage import ConversationInfo, ConversationStore, StoredMessage
from bot.storage.memory import MemoryStore, TurnMemory, TurnMemoryReader
from bot.surface import Surface
from bot.toolkit import Tool, ToolRegistry
from bot.turn.context import build_context, message_tokens, system_prompt
from bot.turn.durable import TurnTicket
from bot.turn.locks import KeyedLocks as KeyedLocks
from bot.turn.locks import RunningTurns
from bot.turn.locks import conversation_key as conversation_key
from bot.turn.media import MediaReader, PreparedTurn
from bot.turn.provenance import others_message
from bot.turn.rounds import TurnOutcome as TurnOutcome
from bot.turn.rounds import TurnRounds
from bot.turn.summaries import Summariser
from bot.turn.tool_choice import most_relevant
from bot.turn.tool_round import RoundRules

log = logging.getLogger(__name__)

UNEXPECTED_ERROR = N_(
    "Sorry, something went wrong on my side. The operators can find details in the logs."
)
# Messages of history that, with the new one, choose the tools when there are too many.
RELEVANCE_HISTORY = 4
# What the user is told of a turn they stopped.
STOPPED_NOTE = N_("Stopped. Your question is kept: ask again, or ask something else.")


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
        self._turns = RunningTurns()

    @property
    def turns_in_flight(self) -> int:
        return self._turns.in_flight

    async def drain(self, within: float) -> bool:
        """Wait until no turn runs (at most `within` seconds); True if none does."""
        return await self._turns.drain(within)

    def cancel_turns(self) -> int:
        """Cancel the turns still running (shutdown after the grace period); returns how
        many. Each round is stored in its own transaction, so nothing is half-written."""
        return self._turns.cancel_all()

    def stop(self, key: tuple[str, str, str, str]) -> bool:
        """Stop the turn running in the conversation `key` (`conversation_key`), at its
        user's request; False if none runs."""
        return self._turns.stop(key)

    def running_in(self, platform: str, chat: str, thread_key: str) -> bool:
        """Whether any user's turn runs in this chat and thread now."""
        return self._turns.running_in(platform, chat, thread_key)

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
        self._turns.started(task)
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
                self._turns.running(key, task)
                try:
                    async with self._store.conversation_lock(key):
                        await self._run_turn(
                            message, surface, outcome, scheduled=scheduled, ticket=ticket
                        )
                except asyncio.CancelledError:
                    if not outcome.stopped and not self._turns.stop_requested():
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
            outcome.total_seconds = time.perf_counter() - started
            self.observer.turn_finished(
                message.platform, "error" if outcome.error else "ok", outcome.total_seconds
            )
            self._turns.ended(key, task)
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
        """The turn once admitted: its words, its stored question and history, the tools
        and context offered, then the rounds (bot/turn/rounds.py)."""
        words = await self._prepare(message, profile)
        if words.refusal:
            outcome.error = words.refusal
            await surface.fail(words.refusal)
            return
        enabled = await self.policy.enabled_tools(message, channel_id, list(self.tools))
        info, history, mine, memory = await self._begin(message, words, user_id, enabled, ticket)
        if await self._delivered_again(mine, surface, outcome):
            return
        first_round = 1 + sum(1 for m in mine if m.role is Role.ASSISTANT and m.tool_calls)
        offered, rules = self._offer(enabled, words, history, scheduled)
        specs = [self._spec(item) for item in offered.values()]
        # Others' words go before the requester's, as data (bot/turn/provenance.py).
        turn = [*others_message(message), *mine]
        context = self._context(message, info, profile, history, memory, turn)
        await surface.start()
        visible: list[str] = []
        for number, note in enumerate(words.notes):
            await surface.stream(("\n\n" if number else "") + note)
            visible.append(note)
        rounds = TurnRounds(
            provider=self.provider,
            observer=self.observer,
            store=self._store,
            settings=self.settings,
            registry=self.tools,
            limits=self.limits,
            admission=admission,
            message=message,
            surface=surface,
            outcome=outcome,
            info=info,
            model=profile.model or "",
            context=context,
            specs=specs,
            offered=offered,
            rules=rules,
            approvals=self.approvals,
            services=self.services,
            stop_requested=self._turns.stop_requested,
            ticket=ticket,
            visible=visible,
            notes=len(words.notes),
        )
        await rounds.run(first_round)

    async def _begin(
        self,
        message: IncomingMessage,
        words: PreparedTurn,
        user_id: int,
        enabled: Sequence[Tool],
        ticket: TurnTicket | None,
    ) -> tuple[ConversationInfo, list[StoredMessage], list[ChatMessage], TurnMemory | None]:
        """Store the question (once, for a resumed turn) and read the history: the
        conversation, the history before this turn, this turn's own messages so far, and
        what it reads of memory."""
        # History keeps words ("[image]" and the caption); only this turn sends pictures.
        user_message = ChatMessage(Role.USER, words.record)
        turn_message = ChatMessage(Role.USER, words.text, images=words.images)
        info, history, own, memory = await self._store.begin_turn(
            message,
            StoredMessage(user_message, message_tokens(user_message)),
            turn_id=ticket.id if ticket is not None else None,
            resumed=ticket is not None and ticket.resumed,
            also=self._memory_reader(message, user_id, enabled),
        )
        # A resumed turn goes on from what it stored: its question (stored once) and the
        # tool rounds it finished before its process died.
        mine = [stored.message for stored in own] or [turn_message]
        return info, history, mine, memory

    async def _delivered_again(
        self, mine: list[ChatMessage], surface: Surface, outcome: TurnOutcome
    ) -> bool:
        """Whether the turn was answered and stored, and its process died before the reply
        was delivered: then the stored answer is delivered now, and that is the turn."""
        if mine[-1].role is not Role.ASSISTANT or mine[-1].tool_calls:
            return False
        await surface.start()
        await surface.stream(mine[-1].content)
        outcome.text = mine[-1].content
        await surface.finish(outcome.text)
        return True

    def _offer(
        self,
        enabled: list[Tool],
        words: PreparedTurn,
        history: list[StoredMessage],
        scheduled: bool,
    ) -> tuple[dict[str, Tool], RoundRules]:
        """The tools offered (the most relevant when there are too many; none that
        schedules work in a scheduled turn) and the rules their calls run by."""
        withheld: dict[str, str] = {}
        if scheduled:
            enabled, withheld = for_scheduled_turn(enabled)
        recent = " ".join(stored.message.content for stored in history[-RELEVANCE_HISTORY:])
        enabled = most_relevant(enabled, f"{words.text} {recent}", self.settings.max_offered_tools)
        rules = RoundRules(
            max_calls=self.settings.max_tool_calls_per_round,
            max_argument_chars=self.settings.max_tool_argument_chars,
            timeout_seconds=self.settings.tool_timeout_seconds,
            withheld=withheld,
        )
        return {item.name: item for item in enabled}, rules

    def _context(
        self,
        message: IncomingMessage,
        info: ConversationInfo,
        profile: ChannelProfile,
        history: list[StoredMessage],
        memory: TurnMemory | None,
        mine: list[ChatMessage],
    ) -> list[ChatMessage]:
        """What the model is sent; a summary of older messages is started (after the
        turn) when they no longer fit."""
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
            system_prompt(
                profile.system_prompt or self.settings.system_prompt,
                info.timezone or self.settings.default_timezone,
                memory,
            ),
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
        return context

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


MEMORY_TOOLS = ("remember", "recall", "forget")
