"""The turn loop: one incoming message in, one streamed answer out.

    lock the conversation (turns of one conversation never interleave)
    resolve user, channel, conversation; store the user's message
    offer the channel's enabled tools; build the trimmed context
    loop, at most `max_tool_rounds` times:
        stream the model's answer to the surface
        no tool calls: store the answer (+ usage) in one transaction, finish
        tool calls: check policy, validate, confirm side effects, run concurrently
                    store the assistant message and every result (+ usage) in one
                    transaction, then call the model again

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

from bot.config import BotSettings
from bot.context import build_context, message_tokens
from bot.domain import (
    ChatMessage,
    ChatRef,
    IncomingMessage,
    Role,
    ToolCall,
    ToolContext,
    ToolResult,
    ToolServices,
    Usage,
    UserRef,
    VendorState,
)
from bot.errors import ProviderError
from bot.limits import Limits
from bot.llm.base import Provider, TextDelta, ToolCallsReady, ToolSpec, TurnFinished
from bot.observe import TURN_ID, Observer, new_turn_id
from bot.policy import AllowAllTools, ChannelProfile, ToolPolicy
from bot.storage import ConversationInfo, ConversationStore, StoredMessage, UsageEntry
from bot.surface import Surface
from bot.toolkit import InvalidArguments, Tool, ToolRegistry

log = logging.getLogger(__name__)

EMPTY_ANSWER = "(The model returned an empty answer. Please try rephrasing your message.)"
UNEXPECTED_ERROR = (
    "Sorry, something went wrong on my side. The operators can find details in the logs."
)


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
    ) -> None:
        self.provider = provider
        self.observer = observer or Observer()
        self.log_bodies = log_bodies
        self.services = services or ToolServices()
        self.store = store
        self.tools = tools
        self.settings = settings
        self.policy = policy or AllowAllTools()
        self.limits = limits
        # Built on first use: tools may come and go (an MCP server's list changes).
        self._specs: dict[str, tuple[Tool, ToolSpec]] = {}
        self._locks = KeyedLocks()
        self._in_flight = 0
        self._turn_tasks: set[asyncio.Task[object]] = set()
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

    def _spec(self, item: Tool) -> ToolSpec:
        cached = self._specs.get(item.name)
        if cached is None or cached[0] is not item:
            spec = ToolSpec(item.name, item.description, item.json_schema(), strict=item.strict)
            cached = self._specs[item.name] = (item, spec)
        return cached[1]

    async def handle(self, message: IncomingMessage, surface: Surface) -> TurnOutcome:
        """Run one turn for `message`, answering through `surface`."""
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
                log.info("turn from %s: %s", message.user.qualified_id, message.text)
            else:
                log.info("turn from %s (%d chars)", message.user.qualified_id, len(message.text))
            # In-process first (cheap), then across replicas (a database lock on PostgreSQL).
            async with self._locks.hold(key):
                try:
                    async with self.store.conversation_lock(key):
                        await self._run_turn(message, surface, outcome)
                except ProviderError as exc:
                    log.warning("turn failed: provider error: %s", exc)
                    outcome.error = exc.user_message
                    await surface.fail(exc.user_message)
                except Exception:
                    log.exception("turn failed unexpectedly")
                    outcome.error = UNEXPECTED_ERROR
                    await surface.fail(UNEXPECTED_ERROR)
        finally:
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
        user's message in their conversation in `chat`, answered through `surface`."""
        message = IncomingMessage(chat=chat, user=user, text=prompt, thread_key=thread_key)
        return await self.handle(message, surface)

    async def offered_tools(self, message: IncomingMessage) -> list[Tool]:
        """The tools a turn from this message's chat would be offered (for /tools)."""
        channel_id = await self.store.channel_id(message.chat)
        return await self.policy.enabled_tools(message, channel_id, list(self.tools))

    async def reset(self, message: IncomingMessage) -> bool:
        """Start a new conversation for this user here; the old one stays stored."""
        key = conversation_key(message)
        async with self._locks.hold(key):
            return await self.store.reset_conversation(message)

    async def tool_overview(self, message: IncomingMessage) -> list[tuple[Tool, bool]]:
        """Every registered tool and whether the message's chat may use it."""
        enabled = {item.name for item in await self.offered_tools(message)}
        return [(item, item.name in enabled) for item in self.tools]

    async def _run_turn(
        self, message: IncomingMessage, surface: Surface, outcome: TurnOutcome
    ) -> None:
        user_id, channel_id = await self.store.ids_of(message.user, message.chat)
        profile = await self.policy.profile(channel_id)
        if self.limits is not None:
            refusal = await self.limits.check(message, user_id, channel_id, profile.limits)
            if refusal:
                log.info(
                    "turn refused by limits for %s:%s: %s",
                    message.user.platform,
                    message.user.platform_user_id,
                    refusal,
                )
                outcome.error = refusal
                await surface.fail(refusal)
                return
        user_message = ChatMessage(Role.USER, message.text)
        info, history = await self.store.start_turn(
            message, StoredMessage(user_message, message_tokens(user_message))
        )
        enabled = await self.policy.enabled_tools(message, info.channel_id, list(self.tools))
        offered = {item.name: item for item in enabled}
        specs = [self._spec(item) for item in offered.values()]
        context = build_context(
            self._system_prompt(info, profile),
            [(stored.message, stored.tokens) for stored in history],
            [user_message],
            self.settings.context_tokens,
        )
        await surface.start()
        visible: list[str] = []
        for round_number in range(1, self.settings.max_tool_rounds + 1):
            outcome.rounds = round_number
            text, calls, usage, model, state = await self._call_model(
                context, specs, surface, visible, outcome, profile.model or ""
            )
            outcome.usage += usage
            usage_entry = UsageEntry(
                info.user_id, info.channel_id, info.conversation_id, model, usage
            )
            assistant = ChatMessage(Role.ASSISTANT, text, tool_calls=calls, vendor_state=state)
            if not calls:
                await self.store.append(
                    info.conversation_id,
                    [StoredMessage(assistant, message_tokens(assistant))],
                    usage=usage_entry,
                )
                if not visible:
                    # An empty answer would be an empty chat message, which platforms refuse.
                    log.warning("the model ended the turn without any text")
                    outcome.error = EMPTY_ANSWER  # shown, but not an answer (follow-ups retry)
                    await surface.stream(EMPTY_ANSWER)
                    visible.append(EMPTY_ANSWER)
                outcome.text = "\n\n".join(visible)
                await surface.finish(outcome.text)
                return
            results = await self._run_tools(calls, offered, message, info, surface)
            outcome.tool_results.extend(results)
            result_messages = [
                ChatMessage(
                    Role.TOOL, r.content, tool_call_id=r.call_id, name=r.name, is_error=r.is_error
                )
                for r in results
            ]
            round_messages = [assistant, *result_messages]
            await self.store.append(
                info.conversation_id,
                [StoredMessage(m, message_tokens(m)) for m in round_messages],
                usage=usage_entry,
            )
            context.extend(round_messages)
        limit = self.settings.max_tool_rounds
        note = (
            f"I stopped after {limit} rounds of tool calls without reaching an answer. "
            "Try asking for less at once, or rephrase the request."
        )
        stopped = ChatMessage(Role.ASSISTANT, note)
        await self.store.append(
            info.conversation_id, [StoredMessage(stopped, message_tokens(stopped))]
        )
        await surface.stream(("\n\n" if visible else "") + note)
        visible.append(note)
        outcome.text = "\n\n".join(visible)
        await surface.finish(outcome.text)

    async def _call_model(
        self,
        context: Sequence[ChatMessage],
        specs: Sequence[ToolSpec],
        surface: Surface,
        visible: list[str],
        outcome: TurnOutcome,
        channel_model: str,
    ) -> tuple[str, tuple[ToolCall, ...], Usage, str, VendorState | None]:
        parts: list[str] = []
        calls: tuple[ToolCall, ...] = ()
        usage = Usage()
        state: VendorState | None = None
        model = channel_model or self.provider.model
        started = time.perf_counter()
        failed = True
        try:
            stream = (
                self.provider.stream(context, specs, model=channel_model)
                if channel_model
                else self.provider.stream(context, specs)
            )
            async for event in stream:
                if isinstance(event, TextDelta):
                    if not parts and visible:
                        await surface.stream("\n\n")
                    parts.append(event.text)
                    await surface.stream(event.text)
                elif isinstance(event, ToolCallsReady):
                    calls = event.calls
                elif isinstance(event, TurnFinished):
                    usage, model = event.usage, event.model or model
                    state = event.vendor_state
            failed = False
        finally:
            outcome.provider_seconds += time.perf_counter() - started
            self.observer.llm_call(model, usage, failed=failed)
        text = "".join(parts)
        if text:
            visible.append(text)
        return text, calls, usage, model, state

    async def _run_tools(
        self,
        calls: Sequence[ToolCall],
        offered: dict[str, Tool],
        message: IncomingMessage,
        info: ConversationInfo,
        surface: Surface,
    ) -> list[ToolResult]:
        """Check, confirm and run one round's calls; results in the calls' order."""
        context = self._tool_context(message, info)
        ready: dict[str, tuple[Tool, BaseModel]] = {}
        results: dict[str, ToolResult] = {}
        for call in calls:
            item = offered.get(call.name)
            if item is None:
                log.info("refused call to unknown or disabled tool %r", call.name)
                results[call.id] = ToolResult(
                    call.id,
                    call.name,
                    f"There is no tool named {call.name!r} available here. "
                    f"Available tools: {', '.join(offered) or 'none'}.",
                    is_error=True,
                )
                continue
            try:
                arguments = item.validate(call)
            except InvalidArguments as exc:
                results[call.id] = ToolResult(call.id, call.name, str(exc), is_error=True)
                continue
            if item.precheck is not None:
                try:
                    refusal = await item.precheck(arguments, context)
                except Exception as exc:  # a check must not crash the turn either
                    refusal = f"{call.name} cannot run: {exc}"
                if refusal:
                    log.info("tool %s refused before confirmation: %s", call.name, refusal)
                    results[call.id] = ToolResult(call.id, call.name, refusal, is_error=True)
                    continue
            # Confirmations are asked one at a time, before anything runs.
            if item.side_effect and not await self._confirm(
                surface, message.user, item.confirmation_question(arguments)
            ):
                results[call.id] = ToolResult(
                    call.id,
                    call.name,
                    "The user did not confirm this action, so it was not done.",
                    is_error=True,
                )
                continue
            ready[call.id] = (item, arguments)

        async def run(call: ToolCall) -> None:
            item, arguments = ready[call.id]
            await surface.tool_started(call)
            result = await item.run_validated(
                call, arguments, context, self.settings.tool_timeout_seconds
            )
            if result.is_error:
                log.info("tool %s failed: %s", call.name, result.content)
            results[call.id] = result
            await surface.tool_finished(call, result)

        runnable = [call for call in calls if call.id in ready]
        if runnable:
            await surface.status(f"Running {', '.join(call.name for call in runnable)}…")
            await asyncio.gather(*(run(call) for call in runnable))
        for call in calls:  # a name the model made up is not a label of its own
            label = call.name if self.tools.get(call.name) is not None else "(unknown)"
            self.observer.tool_call(label, failed=results[call.id].is_error)
        return [results[call.id] for call in calls]

    async def _confirm(self, surface: Surface, user: UserRef, question: str) -> bool:
        self.observer.approval_waiting(+1)
        try:
            return await surface.confirm(user, question)
        finally:
            self.observer.approval_waiting(-1)

    def _tool_context(self, message: IncomingMessage, info: ConversationInfo) -> ToolContext:
        timezone = info.timezone or self.settings.default_timezone
        return ToolContext(
            user=message.user,
            chat=message.chat,
            timezone=timezone,
            now=datetime.now(UTC).astimezone(_zone(timezone)),
            conversation_id=info.conversation_id,
            thread_key=message.thread_key,
            services=self.services,
        )

    def _system_prompt(self, info: ConversationInfo, profile: ChannelProfile) -> str:
        timezone = info.timezone or self.settings.default_timezone
        now = datetime.now(UTC).astimezone(_zone(timezone))
        return (
            f"{profile.system_prompt or self.settings.system_prompt}\n\n"
            f"The user's timezone is {timezone}; it is now {now:%A %Y-%m-%d %H:%M}."
        )


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

    def __len__(self) -> int:
        return len(self._locks)
