"""Durable turns: a turn survives the death of the process that was running it.

    claim      the event and the turn's input (platform, chat, thread, user, text, the
               reply address) in one transaction, held by this process's lease
    run        claimed -> running (with the question stored) -> done once the final
               reply was delivered; side-effecting tool calls are journaled
    die        the process's lease (`process:<id>` in `leases`) stops being renewed
    resume     the scheduler leader, at start and at every renewal, releases the budget
               reservations of dead processes and takes over open turns whose
               holder's lease expired: younger than the resume window they
               run again from the stored input (the stored question reused, finished
               tool rounds kept, settled side effects reused, never run twice); older,
               their user gets one short notice that the answer was lost

A side-effecting call is journaled (turn, round, position, tool, arguments digest) after
the user confirmed it and *before* it runs, and settled with its result after. A resumed
round that makes the same call at the same position reuses a settled result; one that
was begun but never settled (the process died while it ran) is not run again: the model
reads that it happened at most once. So an email goes out at most once, even when the
process died after the mail server took it and before the result was stored. A call
that was never journaled was never confirmed, so its confirmation is simply asked again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel

from bot.domain import ChatMessage, IncomingMessage, Role, ToolResult, UserRef
from bot.i18n import N_, _, use_locale
from bot.ops.observe import Observer
from bot.storage.budgets import BudgetStore
from bot.storage.leases import LeaseStore
from bot.storage.models import TurnState, utcnow
from bot.storage.turns import JournalEntry, StoredTurn, TurnStore
from bot.surface import Surface
from bot.turn.context import message_tokens

log = logging.getLogger(__name__)

LOST_NOTICE = N_(
    "Sorry, I was restarted while answering your message, and it is too late to finish "
    "that answer now. Please ask again if you still need it."
)
# What the model reads in place of the lost answer (not shown to anyone).
LOST_FOR_MODEL = (
    "(No answer was given to this message: the service restarted while answering it and "
    "the user was told to ask again. Do not answer it unless the user asks again.)"
)
UNSETTLED = (
    "This action was started once already, before the service restarted, and whether it "
    "completed is not known. It was NOT run again, so it happened at most once. Tell the "
    "user so, and that they can check and ask again if it did not happen."
)
MAX_ATTEMPTS = 3  # a turn that kept killing its process is told lost, not run again


def arguments_digest(tool: str, arguments: BaseModel) -> str:
    """A stable digest of a call's validated arguments (the journal compares these)."""
    canonical = json.dumps(
        arguments.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(f"{tool}\n{canonical}".encode()).hexdigest()


@dataclass(slots=True)
class RoundJournal:
    """The journal of one round's side-effecting calls (what `run_round` consults)."""

    store: TurnStore
    turn_id: int
    round_number: int
    resumed: bool
    _recalled: dict[int, JournalEntry] | None = None

    async def recall(self, position: int, tool: str, digest: str) -> ToolResult | None:
        """An earlier attempt's result for this call, or None if it must run (now).
        Only a resumed turn has earlier attempts: a fresh one asks nothing."""
        if not self.resumed:
            return None
        if self._recalled is None:
            self._recalled = await self.store.recall(self.turn_id, self.round_number)
        entry = self._recalled.get(position)
        if entry is None or entry.tool != tool or entry.arguments_digest != digest:
            return None
        if entry.settled:
            log.info("turn %d: reusing the settled result of %s", self.turn_id, tool)
            return ToolResult("", tool, entry.result, is_error=entry.is_error)
        log.warning(
            "turn %d: %s was begun before a restart; not running it again", self.turn_id, tool
        )
        return ToolResult("", tool, UNSETTLED, is_error=True)

    async def begin(self, position: int, tool: str, digest: str) -> None:
        await self.store.begin_call(self.turn_id, self.round_number, position, tool, digest)

    async def settle(self, position: int, result: ToolResult) -> None:
        await self.store.settle_call(
            self.turn_id, self.round_number, position, result.content, result.is_error
        )


@dataclass(slots=True)
class TurnTicket:
    """A durable turn this process runs: its row, and whether it is a resumed one."""

    store: TurnStore
    id: int
    resumed: bool = False
    preview: str = ""
    # Settles the row even across a database outage (None: one try, which may raise).
    settler: Settler | None = None

    def journal(self, round_number: int) -> RoundJournal:
        return RoundJournal(self.store, self.id, round_number, self.resumed)

    async def note_preview(self, ref: str) -> None:
        """The platform showed the half-written answer in message `ref`: a resume
        finishes or replaces that message instead of leaving it."""
        if ref and ref != self.preview:
            self.preview = ref
            try:
                await self.store.set_preview(self.id, ref)
            except Exception as exc:  # a preview is worth less than the turn
                log.warning("turn %d: could not record its preview (%s)", self.id, exc)

    async def done(self) -> None:
        """The turn is over and its user was told (answered, or told it failed): its row
        says so, now or, if the database is away, once it is back."""
        if self.settler is not None:
            await self.settler.settle(self.id, TurnState.DONE)
        else:
            await self.store.finish(self.id, TurnState.DONE)


class Settler:
    """Settles turns whose user was told how they ended. A row left open would be resumed
    by the next leader once this process is gone: the same answer a second time, or a
    real answer minutes after "sorry". So a failed settle is not dropped: it is tried
    again in the background, with a pause doubling from `first_delay` to `max_delay`,
    until the database takes it or `give_up_after` seconds have passed (logged, and
    counted in `parley_turns_unsettled` meanwhile). The process's lease is renewed all
    the while, so nobody resumes the turn as long as this process lives."""

    def __init__(
        self,
        store: TurnStore,
        observer: Observer | None = None,
        *,
        first_delay: float = 0.25,
        max_delay: float = 10.0,
        give_up_after: float = 3600.0,
    ) -> None:
        self.store = store
        self.observer = observer or Observer()
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.give_up_after = give_up_after
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Turns not settled yet (being retried)."""
        return len(self._tasks)

    async def settle(self, turn_id: int, state: str) -> None:
        try:
            await self.store.finish(turn_id, state)
            return
        except Exception as exc:
            log.warning("turn %d: could not settle it as %s (%s); retrying", turn_id, state, exc)
        self.observer.turn_unsettled(+1)
        task = asyncio.create_task(self._retry(turn_id, state), name=f"settle-turn-{turn_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Until every settle started so far has succeeded or given up (tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _retry(self, turn_id: int, state: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        delay = self.first_delay
        try:
            while True:
                await asyncio.sleep(delay)
                try:
                    await self.store.finish(turn_id, state)
                except Exception as exc:
                    if loop.time() >= deadline:
                        log.error(
                            "turn %d: gave up settling it as %s (%s); it will be resumed "
                            "once this process is gone",
                            turn_id,
                            state,
                            exc,
                        )
                        return
                    delay = min(delay * 2, self.max_delay)
                    continue
                log.info("turn %d: settled as %s at last", turn_id, state)
                return
        finally:
            self.observer.turn_unsettled(-1)


class ProcessLease:
    """This process's lease (`process:<id>`): while it is renewed, nobody resumes the
    turns it holds. Renewed every `renew_seconds`, for `ttl_seconds`."""

    def __init__(self, leases: LeaseStore, *, ttl_seconds: float, renew_seconds: float) -> None:
        self.leases = leases
        self.name = f"process:{uuid.uuid4().hex[:16]}"
        self.ttl = timedelta(seconds=ttl_seconds)
        self.renew_seconds = renew_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._renew()
        self._task = asyncio.create_task(self._loop(), name="process-lease")

    async def _renew(self) -> None:
        now = utcnow()
        if not await self.leases.take(self.name, self.name, now=now, until=now + self.ttl):
            raise RuntimeError(f"the lease {self.name} is held by another process")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            try:
                await self._renew()
            except Exception as exc:  # keep trying: the lease outlives a few failures
                log.warning("process lease: renewing failed (%s)", exc)

    async def stop(self) -> None:
        """Stop renewing and give the lease up: turns still open (cancelled at shutdown)
        are resumed by the leader at once instead of after the lease runs out."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.leases.release(self.name, self.name)
        except Exception as exc:
            log.warning("process lease: releasing failed (%s); it expires", exc)


SurfaceFor = Callable[[StoredTurn, TurnTicket], Surface | None]
RunTurn = Callable[[IncomingMessage, Surface, TurnTicket], Awaitable[object]]


@dataclass
class TurnRecovery:
    """The leader's sweep: resume or report the open turns of dead processes."""

    store: TurnStore
    lease: ProcessLease
    surface_for: SurfaceFor
    run_turn: RunTurn
    window: timedelta
    # The language a lost turn's notice is written in: its user's (bot/chat/languages.py).
    locale_of: Callable[[UserRef], Awaitable[str]] | None = None
    # Budget reservations of dead processes are released before their turns are taken.
    budgets: BudgetStore | None = None
    # Settles resumed turns across an outage too (the desk's).
    settler: Settler | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def sweep(self) -> int:
        """Take over the orphaned turns and start resuming them (not waited for); how
        many were taken. The dead processes' budget reservations are released first, so
        a resumed turn (and its user's next message) is not refused by its own."""
        if self.budgets is not None:
            released = await self.budgets.release_dead()
            if released:
                log.info("released %d budget reservation(s) of processes that stopped", released)
        taken = await self.store.take_over(self.lease.name, now=utcnow())
        for turn in taken:
            task = asyncio.create_task(self._recover(turn), name=f"resume-turn-{turn.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if taken:
            log.info("resuming %d turn(s) of processes that stopped", len(taken))
        return len(taken)

    async def wait(self) -> None:
        """Until every resume started so far has ended (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _recover(self, turn: StoredTurn) -> None:
        ticket = TurnTicket(
            self.store, turn.id, resumed=True, preview=turn.preview, settler=self.settler
        )
        try:
            surface = self.surface_for(turn, ticket)
            if surface is None:
                log.warning(
                    "turn %d: no %s platform here to answer it; left for another replica",
                    turn.id,
                    turn.platform,
                )
                return
            age = utcnow() - turn.created_at
            if age > self.window or turn.attempts > MAX_ATTEMPTS:
                log.info(
                    "turn %d: lost (%.0f s old, attempt %d)",
                    turn.id,
                    age.total_seconds(),
                    turn.attempts,
                )
                locale = await self.locale_of(turn.message.user) if self.locale_of else None
                with use_locale(locale):
                    await surface.fail(_(LOST_NOTICE))
                note = ChatMessage(Role.ASSISTANT, LOST_FOR_MODEL)
                await self.store.mark_lost(turn.id, LOST_FOR_MODEL, message_tokens(note))
                return
            log.info("turn %d: running it again (attempt %d)", turn.id, turn.attempts)
            await self.run_turn(turn.message, surface, ticket)
        except Exception:
            # Left open: its holder (this process) is alive, so it is retried only if
            # this process dies too; the log says why.
            log.exception("turn %d: resuming failed", turn.id)
