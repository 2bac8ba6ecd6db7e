"""`ReminderScheduler`: the `reminders` table drives an APScheduler AsyncIOScheduler.

The table is the source of truth. The scheduler's in-memory job store holds one date job
per pending reminder (id = the reminder id), rebuilt from the table at `start()`; APScheduler
only says *when*. Jobs never miss (`misfire_grace_time=None`): a reminder that came due
while the process was down fires as soon as the scheduler starts, marked late.

Delivery of one firing, and why it is at-least-once, never lost:

    1. claim   (transaction) attempts += 1 WHERE status = 'pending'   -- cancelled: stop
    2. send    the text through the platform's Messenger (follow-up: run a model turn first)
    3. settle  (transaction) one-off: status = 'delivered'; recurring: due_at = next time;
               failure: retry_at = now + backoff, or status = 'failed' after max attempts

Step 1 makes a cancel that lands first win and records that an attempt began. A crash
between 2 and 3 leaves the row pending, so the restart delivers it again: the only way to
get a duplicate is a crash during a send (before its settle is committed), and the only
alternative, marking it delivered before sending, would lose the reminder on the same
crash. A reminder that must not be lost is worth that rare repeat. One job per id
(`replace_existing`, `max_instances=1`) and the `status = 'pending'` guard on every write
mean a process never delivers one firing twice. Claims and settles are group-committed
(one transaction per batch of due reminders), which is what keeps 10,000 reminders due
in 20 s on time on SQLite's single writer (docs/benchmarks.md). Run one scheduler per
database (APScheduler's FAQ; DESIGN: one scheduler leader).

A job is this scheduler's bound `_due` method and the reminder id. The memory job store
never pickles, so a job may point at its owner directly, and no module-level registry is
needed to find it; since the table is the source of truth, nothing is lost with the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.config import ReminderSettings
from bot.domain import ChatRef, ReminderInfo, ReminderRequest, UserRef
from bot.errors import ToolError
from bot.i18n import use_locale
from bot.ops.observe import Observer
from bot.reminders.delivery import (
    DeliveryFailed,
    Outcome,
    compose,
    is_late,
    next_state,
    row_id,
    to_info,
)
from bot.reminders.recurrence import as_utc, duration, shortest_gap
from bot.storage import ConversationStore, Database
from bot.storage.models import Reminder, utcnow
from bot.storage.reminders import ReminderStore
from bot.surface import Messenger

if TYPE_CHECKING:
    from bot.turn.engine import Engine

log = logging.getLogger(__name__)

BATCH = 500  # reminders claimed or settled per transaction
PICK_UP_WINDOW_SECONDS = 300  # how far back the leader looks for other replicas' reminders


class ReminderScheduler:
    """Stores reminders, schedules them and delivers them; a `ReminderBook` for tools."""

    def __init__(
        self,
        database: Database,
        store: ConversationStore,
        settings: ReminderSettings,
        messenger_for: Callable[[str], Messenger | None],
        *,
        engine: Callable[[], Engine | None] = lambda: None,
        observer: Observer | None = None,
        locale_of: Callable[[UserRef], Awaitable[str]] | None = None,
    ) -> None:
        """`messenger_for(platform)` and `engine()` are asked when a reminder goes out:
        the composition root builds the engine and the platforms after this scheduler
        (the engine's tools need it), so they are resolved then, not here."""
        self.reminders = ReminderStore(database)
        self.store = store
        self.settings = settings
        self.messenger_for = messenger_for
        self.engine = engine
        # The language each delivery is written in: its owner's (bot/chat/languages.py).
        self.locale_of = locale_of
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._inflight: set[asyncio.Task[Any]] = set()
        self._claims: asyncio.Queue[int] = asyncio.Queue()
        self._settles: asyncio.Queue[Outcome] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self.observer = observer or Observer()
        self.running = False
        self._known: set[int] = set()  # ids scheduled here since start()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        """Start the clock and schedule every pending reminder; returns how many."""
        self._known = set()
        self._claims = asyncio.Queue()
        self._settles = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._claim_loop(), name="reminders-claim"),
            asyncio.create_task(self._settle_loop(), name="reminders-settle"),
        ]
        self._scheduler.start()
        self.running = True
        rows = await self.reminders.pending()
        for reminder_id, due_at, retry_at in rows:
            self._schedule(reminder_id, as_utc(retry_at or due_at))
        log.info("scheduler started with %d pending reminders", len(rows))
        return len(rows)

    async def pick_up_new(self) -> int:
        """Schedule reminders created lately by another replica (only the leader's
        scheduler runs); returns how many. The leader calls it at every lease renewal.
        Ids are not committed in order, so it looks at a creation-time window rather than
        "ids above the last one", and skips ids it scheduled before (which may have fired
        and be in flight: scheduling them again would send them twice)."""
        if not self.running:
            return 0
        since = utcnow() - timedelta(seconds=PICK_UP_WINDOW_SECONDS)
        rows = await self.reminders.pending(created_since=since)
        fresh = [row for row in rows if row[0] not in self._known]
        for reminder_id, due_at, retry_at in fresh:
            self._schedule(reminder_id, as_utc(retry_at or due_at))
        return len(fresh)

    async def stop(self) -> None:
        """Stop the clock. Sends in flight get a moment to finish and be recorded; what
        is left stays pending in the table and is delivered at the next start."""
        if not self.running:
            return
        self.running = False
        self._scheduler.shutdown(wait=False)
        if self._inflight:
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self.settings.stop_grace_seconds
            )
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        try:  # every finished send is recorded before we go, unless the database is gone
            await asyncio.wait_for(self._settles.join(), timeout=10)
        except TimeoutError:
            log.error("stopping with unrecorded deliveries: they are sent again at next start")
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    def _schedule(self, reminder_id: int, when: datetime) -> None:
        self._known.add(reminder_id)
        self._scheduler.add_job(
            self._due,
            trigger=DateTrigger(run_date=when, timezone=UTC),
            args=[reminder_id],
            id=str(reminder_id),
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _unschedule(self, reminder_id: int) -> None:
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(str(reminder_id))

    # -- ReminderBook ------------------------------------------------------------------------

    async def create(self, request: ReminderRequest) -> ReminderInfo:
        """Store and schedule a reminder. Raises `ToolError` with a sentence the model
        reads when it is refused: a follow-up repeating too often, or too many pending."""
        if request.kind == "follow_up" and request.cron:
            self._check_follow_up_interval(request)
        user_id, channel_id = await self.store.ids_of(request.user, request.chat)
        row = Reminder(
            user_id=user_id,
            channel_id=channel_id,
            thread_key=request.thread_key,
            kind=request.kind,
            text=request.text,
            due_at=as_utc(request.due_at),
            timezone=request.timezone,
            recurrence=request.recurrence,
            cron=request.cron,
        )
        cap = self.settings.max_pending_per_user
        pending = await self.reminders.add_within_cap(row, cap)
        if pending >= cap:
            log.info(
                "reminder refused for %s: %d pending, the cap is %d",
                request.user.qualified_id,
                pending,
                cap,
            )
            raise ToolError(
                f"Not created: the user already has {pending} pending reminders, the most "
                f"one person may have ({cap}). They can cancel ones they no longer need "
                "(list_reminders shows them) and then ask again."
            )
        self._schedule(row_id(row), row.due_at)
        log.info("reminder %d created for %s", row_id(row), request.user.qualified_id)
        return to_info(row, request.user.qualified_id)

    def _check_follow_up_interval(self, request: ReminderRequest) -> None:
        minimum = self.settings.min_follow_up_interval_seconds
        if minimum <= 0:
            return
        try:
            gap = shortest_gap(request.cron, request.timezone, as_utc(request.due_at), minimum)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
            raise ToolError(f"invalid repeat pattern {request.cron!r}: {exc}") from None
        if gap is not None and gap < minimum:
            log.info(
                "follow-up refused for %s: %r repeats after %s",
                request.user.qualified_id,
                request.cron,
                duration(gap),
            )
            raise ToolError(
                f"Not created: a repeating follow-up runs a model turn each time, so it may "
                f"repeat at most once every {duration(minimum)}, and {request.cron!r} would "
                f"run again after {duration(gap)}. Choose a longer interval (daily, for "
                "example), or a repeating reminder of kind 'message', which is not limited."
            )

    async def list_for(
        self, user: UserRef, *, include_done: bool = False, chat: ChatRef | None = None
    ) -> list[ReminderInfo]:
        """`user`'s reminders, soonest first; with `chat`, only those delivered there."""
        user_id = await self.store.user_id_of(user)
        channel_id = None if chat is None else await self.store.channel_id(chat)
        rows = await self.reminders.list_for(
            user_id, include_done=include_done, channel_id=channel_id
        )
        return [to_info(row, user.qualified_id) for row in rows]

    async def list_all(
        self, *, include_done: bool = False, limit: int = 1000
    ) -> list[ReminderInfo]:
        """Every user's reminders, soonest first (for the CLI)."""
        rows = await self.reminders.list_all(include_done=include_done, limit=limit)
        return [to_info(row, owner) for row, owner in rows]

    async def cancel(self, user: UserRef | None, reminder_id: int) -> bool:
        """Cancel a pending reminder of `user` (None: anyone's, for operators)."""
        user_id = None if user is None else await self.store.user_id_of(user)
        cancelled = await self.reminders.cancel(reminder_id, user_id)
        if cancelled:
            self._unschedule(reminder_id)
            log.info("reminder %d cancelled", reminder_id)
        return cancelled

    # -- delivery ----------------------------------------------------------------------------
    #
    # Claims and settlements are group-committed: a job only queues its id; one worker
    # claims everything queued in one transaction, each send runs as its own task, and
    # another worker records the outcomes in one transaction. SQLite has one writer, so
    # a burst of due reminders costs a few transactions instead of two per reminder.

    async def _due(self, reminder_id: int) -> None:
        """The job's work: queue the reminder for the next claim."""
        if self.running:
            self._claims.put_nowait(reminder_id)

    async def _claim_loop(self) -> None:
        while True:
            ids = await _take(self._claims, BATCH)
            try:
                claimed = await self.reminders.claim(ids)
            except Exception:
                log.exception("claiming reminders failed; they are retried")
                self._retry_later(ids)
                continue
            for row, user, chat in claimed:
                task = asyncio.create_task(self._send(row, user, chat))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _send(self, row: Reminder, user: UserRef, chat: ChatRef) -> None:
        error = ""
        late = self.is_late(row, utcnow())
        try:
            locale = await self.locale_of(user) if self.locale_of is not None else None
            with use_locale(locale):
                text = await compose(row, user, chat, late, self.engine())
            messenger = self.messenger_for(chat.platform)
            if messenger is None:
                raise DeliveryFailed(f"no messenger for platform {chat.platform!r}")
            await messenger.send(chat, text, row.thread_key)
        except asyncio.CancelledError:
            raise  # stopped mid-send: the row stays pending, the next start delivers it
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
        self.observer.reminder_fired(late=late, failed=bool(error))
        self._settles.put_nowait(Outcome(row, utcnow(), error))

    def is_late(self, row: Reminder, now: datetime) -> bool:
        """Whether this attempt starts late (see `bot.reminders.delivery.is_late`)."""
        return is_late(self.settings, row, now)

    async def _settle_loop(self) -> None:
        while True:
            outcomes = await _take(self._settles, BATCH)
            try:
                changes = [next_state(self.settings, outcome) for outcome in outcomes]
                await self.reminders.settle([values for values, _ in changes])
                for values, when in changes:
                    if when is not None and self.running:
                        self._schedule(values["b_id"], when)
            except Exception:
                log.exception("recording reminder deliveries failed; they stay pending")
                self._retry_later([row_id(outcome.row) for outcome in outcomes])
            finally:
                for _ in outcomes:
                    self._settles.task_done()

    def _retry_later(self, ids: list[int]) -> None:
        if self.running:
            when = utcnow() + timedelta(seconds=self.settings.retry_seconds)
            for reminder_id in ids:
                self._schedule(reminder_id, when)


async def _take(queue: asyncio.Queue[Any], limit: int) -> list[Any]:
    """Wait for one item, then take whatever else is already queued (up to `limit`)."""
    items = [await queue.get()]
    while len(items) < limit and not queue.empty():
        items.append(queue.get_nowait())
    return items
