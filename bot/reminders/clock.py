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
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.config import ReminderSettings
from bot.domain import ChatRef, UserRef
from bot.i18n import use_locale
from bot.ops.observe import Observer
from bot.reminders.book import ReminderBook
from bot.reminders.delivery import (
    DeliveryFailed,
    Outcome,
    compose,
    is_late,
    next_state,
    row_id,
)
from bot.reminders.recurrence import as_utc
from bot.storage.models import Reminder, utcnow
from bot.surface import Messenger

if TYPE_CHECKING:
    from bot.turn.engine import Engine

log = logging.getLogger(__name__)

BATCH = 500  # reminders claimed or settled per transaction
PICK_UP_WINDOW_SECONDS = 300  # how far back the leader looks for other replicas' reminders


class ReminderScheduler:
    """Schedules the book's pending reminders on the leader and delivers them."""

    def __init__(
        self,
        book: ReminderBook,
        settings: ReminderSettings,
        messengers: Mapping[str, Messenger],
        engine: Engine,
        *,
        observer: Observer | None = None,
        locale_of: Callable[[UserRef], Awaitable[str]] | None = None,
    ) -> None:
        """Built last, when the engine (a follow-up runs a turn of it) and the platforms'
        `messengers` exist; it watches `book` for reminders created or cancelled."""
        self.reminders = book.reminders
        self.settings = settings
        self.messengers = messengers
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

    # -- what the book tells -----------------------------------------------------------------

    def created(self, reminder_id: int, due_at: datetime) -> None:
        """A new reminder: scheduled only on a running clock. A standby's APScheduler would
        keep the job "tentatively" and fire it on becoming leader, beside the same row
        read from the table; the leader picks the row up from the table instead."""
        if self.running:
            self._schedule(reminder_id, due_at)

    def cancelled(self, reminder_id: int) -> None:
        self._unschedule(reminder_id)

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
                text = await compose(row, user, chat, late, self.engine)
            messenger = self.messengers.get(chat.platform)
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
