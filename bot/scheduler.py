"""Reminders and follow-ups: the `reminders` table drives an APScheduler AsyncIOScheduler.

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

Job functions are module-level and take the reminder id plus the key of the scheduler
that owns it, so the job itself is plain data (as a persistent store would need it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import bindparam, func, update
from sqlmodel import col, select

from bot.config import ReminderSettings
from bot.domain import (
    ChatKind,
    ChatRef,
    ReminderInfo,
    ReminderRequest,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.engine import Engine
from bot.errors import StorageError, ToolError
from bot.observe import Observer
from bot.recurrence import as_utc, duration, next_occurrence, shortest_gap
from bot.storage import ConversationStore, Database
from bot.storage.models import Channel, Reminder, User, utcnow
from bot.surface import Messenger

log = logging.getLogger(__name__)

BATCH = 500  # reminders claimed or settled per transaction
PICK_UP_WINDOW_SECONDS = 300  # how far back the leader looks for other replicas' reminders

_SCHEDULERS: weakref.WeakValueDictionary[str, ReminderScheduler] = weakref.WeakValueDictionary()


async def deliver_reminder(scheduler_key: str, reminder_id: int) -> None:
    """The APScheduler job: deliver one reminder through the scheduler that owns it."""
    owner = _SCHEDULERS.get(scheduler_key)
    if owner is None:
        log.warning("reminder %d: its scheduler is gone; it fires at the next start", reminder_id)
        return
    await owner.deliver(reminder_id)


@dataclass
class CollectingSurface:
    """The Surface of a follow-up turn: nobody watches it live, so it keeps the answer.

    Confirmations are refused: a side-effecting tool needs someone present to say yes.
    """

    text: str = ""
    error: str = ""
    tools: list[str] = field(default_factory=list)

    async def start(self) -> None:
        return None

    async def stream(self, delta: str) -> None:
        return None

    async def status(self, text: str) -> None:
        return None

    async def tool_started(self, call: ToolCall) -> None:
        self.tools.append(call.name)

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        return None

    async def finish(self, text: str) -> None:
        self.text = text

    async def fail(self, text: str) -> None:
        self.error = text

    async def confirm(self, user: UserRef, question: str) -> bool:
        return False

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        raise RuntimeError("a follow-up turn cannot post elsewhere")


class DeliveryFailed(Exception):
    """This attempt did not reach the chat; it will be retried."""


class ReminderScheduler:
    """Stores reminders, schedules them and delivers them; a `ReminderBook` for tools."""

    def __init__(
        self,
        database: Database,
        store: ConversationStore,
        settings: ReminderSettings,
        messengers: Mapping[str, Messenger],
        *,
        engine: Engine | None = None,
    ) -> None:
        self.db = database
        self.store = store
        self.settings = settings
        self.messengers = messengers
        self.engine = engine
        self.key = uuid.uuid4().hex
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._inflight: set[asyncio.Task[Any]] = set()
        self._claims: asyncio.Queue[int] = asyncio.Queue()
        self._settles: asyncio.Queue[Outcome] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self.stop_grace_seconds = 5.0
        self.observer = Observer()
        self.running = False
        self._known: set[int] = set()  # ids scheduled here since start()
        _SCHEDULERS[self.key] = self

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
        async with self.db.read() as session:
            rows = (
                await session.exec(
                    select(Reminder.id, Reminder.due_at, Reminder.retry_at).where(
                        Reminder.status == "pending"
                    )
                )
            ).all()
        for reminder_id, due_at, retry_at in rows:
            self._schedule(int(reminder_id or 0), as_utc(retry_at or due_at))
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
        async with self.db.read() as session:
            rows = (
                await session.exec(
                    select(Reminder.id, Reminder.due_at, Reminder.retry_at).where(
                        Reminder.status == "pending", col(Reminder.created_at) >= since
                    )
                )
            ).all()
        fresh = [row for row in rows if int(row[0] or 0) not in self._known]
        for reminder_id, due_at, retry_at in fresh:
            self._schedule(int(reminder_id or 0), as_utc(retry_at or due_at))
        return len(fresh)

    async def stop(self) -> None:
        """Stop the clock. Sends in flight get a moment to finish and be recorded; what
        is left stays pending in the table and is delivered at the next start."""
        if not self.running:
            return
        self.running = False
        self._scheduler.shutdown(wait=False)
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=self.stop_grace_seconds)
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
            deliver_reminder,
            trigger=DateTrigger(run_date=when, timezone=UTC),
            args=[self.key, reminder_id],
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
        async with self.db.write() as session:
            # Counted in the write that inserts: SQLite writes one at a time, and the user's
            # row lock makes PostgreSQL's concurrent creates of one user take turns. NO KEY
            # UPDATE, so it does not wait for transactions that merely reference the user.
            lock = select(User.id).where(User.id == user_id).with_for_update(key_share=True)
            await session.exec(lock)
            pending = (
                await session.exec(
                    select(func.count())
                    .select_from(Reminder)
                    .where(Reminder.user_id == user_id, Reminder.status == "pending")
                )
            ).one()
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
            session.add(row)
            await session.flush()
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
        query = select(Reminder).where(Reminder.user_id == user_id)
        if chat is not None:
            query = query.where(Reminder.channel_id == await self.store.channel_id(chat))
        if not include_done:
            query = query.where(Reminder.status == "pending")
        async with self.db.read() as session:
            rows = (await session.exec(query.order_by(col(Reminder.due_at)))).all()
        return [to_info(row, user.qualified_id) for row in rows]

    async def list_all(
        self, *, include_done: bool = False, limit: int = 1000
    ) -> list[ReminderInfo]:
        """Every user's reminders, soonest first (for the CLI)."""
        query = select(Reminder, User.platform, User.platform_user_id).join(
            User, col(User.id) == Reminder.user_id
        )
        if not include_done:
            query = query.where(Reminder.status == "pending")
        async with self.db.read() as session:
            rows = (await session.exec(query.order_by(col(Reminder.due_at)).limit(limit))).all()
        return [to_info(row, f"{platform}:{uid}") for row, platform, uid in rows]

    async def cancel(self, user: UserRef | None, reminder_id: int) -> bool:
        """Cancel a pending reminder of `user` (None: anyone's, for operators)."""
        statement = update(Reminder).where(
            col(Reminder.id) == reminder_id, col(Reminder.status) == "pending"
        )
        if user is not None:
            user_id = await self.store.user_id_of(user)
            statement = statement.where(col(Reminder.user_id) == user_id)
        async with self.db.write() as session:
            result = await session.exec(statement.values(status="cancelled", retry_at=None))
        cancelled = bool(result.rowcount)
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

    async def deliver(self, reminder_id: int) -> None:
        """The job's work: queue the reminder for the next claim."""
        if self.running:
            self._claims.put_nowait(reminder_id)

    async def _claim_loop(self) -> None:
        while True:
            ids = await _take(self._claims, BATCH)
            try:
                claimed = await self._claim(ids)
            except Exception:
                log.exception("claiming reminders failed; they are retried")
                self._retry_later(ids)
                continue
            for row, user, chat in claimed:
                task = asyncio.create_task(self._send(row, user, chat))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _claim(self, ids: list[int]) -> list[tuple[Reminder, UserRef, ChatRef]]:
        async with self.db.write() as session:
            await session.exec(
                update(Reminder)
                .where(col(Reminder.id).in_(ids), col(Reminder.status) == "pending")
                .values(attempts=Reminder.attempts + 1)
            )
            rows = (
                await session.exec(
                    select(Reminder, User, Channel)
                    .join(User, col(User.id) == Reminder.user_id)
                    .join(Channel, col(Channel.id) == Reminder.channel_id)
                    .where(col(Reminder.id).in_(ids), col(Reminder.status) == "pending")
                )
            ).all()
        return [
            (
                row,
                UserRef(user.platform, user.platform_user_id, user.display_name),
                ChatRef(channel.platform, channel.platform_chat_id, ChatKind(channel.kind), ""),
            )
            for row, user, channel in rows
        ]

    async def _send(self, row: Reminder, user: UserRef, chat: ChatRef) -> None:
        error = ""
        late = self.is_late(row, utcnow())
        try:
            text = await self._compose(row, user, chat, late)
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
        """Whether this attempt starts more than `late_after_seconds` after the time it
        was scheduled for: `due_at`, or for a retry the `retry_at` the backoff chose.

        "Late" tells the reader what they cannot otherwise know: Parley was down or
        backlogged when it should have acted. A retry that runs when its backoff said is
        delivery working as designed (the first at `retry_seconds`, the whole schedule
        bounded by `max_attempts`), so it is not called late; one that starts late after
        its own retry time is.
        """
        scheduled = as_utc(row.retry_at or row.due_at)
        return (now - scheduled).total_seconds() > self.settings.late_after_seconds

    async def _compose(self, row: Reminder, user: UserRef, chat: ChatRef, is_late: bool) -> str:
        late = ""
        if is_late:
            local = as_utc(row.due_at).astimezone(zoneinfo.ZoneInfo(row.timezone))
            late = f" (late: this was due {local:%Y-%m-%d %H:%M} {row.timezone})"
        if row.kind != "follow_up":
            return f"⏰ Reminder{late}: {row.text}"
        if self.engine is None:
            raise DeliveryFailed("follow-ups need the engine, which is not running here")
        surface = CollectingSurface()
        outcome = await self.engine.run_prompt(
            user, chat, row.text, surface, thread_key=row.thread_key
        )
        if surface.error or outcome.error or not surface.text.strip():
            reason = surface.error or outcome.error or "empty answer"
            raise DeliveryFailed(f"the follow-up turn failed: {reason}")
        return f"⏰ Follow-up{late}: {surface.text}"

    async def _settle_loop(self) -> None:
        while True:
            outcomes = await _take(self._settles, BATCH)
            try:
                await self._settle(outcomes)
            except Exception:
                log.exception("recording reminder deliveries failed; they stay pending")
                self._retry_later([row_id(outcome.row) for outcome in outcomes])
            finally:
                for _ in outcomes:
                    self._settles.task_done()

    async def _settle(self, outcomes: list[Outcome]) -> None:
        changes = [self._next_state(outcome) for outcome in outcomes]
        table = Reminder.__table__  # type: ignore[attr-defined]
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.status == "pending")
            .values(
                status=bindparam("b_status"),
                due_at=bindparam("b_due_at"),
                attempts=bindparam("b_attempts"),
                retry_at=bindparam("b_retry_at"),
                delivered_at=bindparam("b_delivered_at"),
                deliveries=bindparam("b_deliveries"),
                last_error=bindparam("b_last_error"),
            )
        )
        async with self.db.write() as session:
            connection = await session.connection()
            await connection.execute(statement, [values for values, _ in changes])
        for values, when in changes:
            if when is not None and self.running:
                self._schedule(values["b_id"], when)

    def _next_state(self, outcome: Outcome) -> tuple[dict[str, Any], datetime | None]:
        """The row's new values after this attempt, and when its job must run next."""
        row, now = outcome.row, outcome.at
        reminder_id, due_at = row_id(row), as_utc(row.due_at)
        values: dict[str, Any] = {
            "b_id": reminder_id,
            "b_status": "pending",
            "b_due_at": due_at,
            "b_attempts": row.attempts,
            "b_retry_at": None,
            "b_delivered_at": as_utc(row.delivered_at) if row.delivered_at else None,
            "b_deliveries": row.deliveries,
            "b_last_error": outcome.error[:1000],
        }
        upcoming = next_occurrence(row.cron, row.timezone, max(now, due_at)) if row.cron else None
        if not outcome.error:
            values.update(b_delivered_at=now, b_deliveries=row.deliveries + 1)
            if upcoming is None:
                values["b_status"] = "delivered"
                return values, None
            values.update(b_due_at=upcoming, b_attempts=0)
            return values, upcoming
        if row.attempts < self.settings.max_attempts:
            retry_at = now + timedelta(
                seconds=self.settings.retry_seconds * 2 ** (row.attempts - 1)
            )
            log.warning(
                "reminder %d: delivery attempt %d failed (%s); retrying at %s",
                reminder_id,
                row.attempts,
                outcome.error,
                retry_at.isoformat(timespec="seconds"),
            )
            values["b_retry_at"] = retry_at
            return values, retry_at
        log.error(
            "reminder %d: delivery failed %d times, giving up%s: %s",
            reminder_id,
            row.attempts,
            " on this occurrence" if upcoming else "",
            outcome.error,
        )
        if upcoming is None:
            values["b_status"] = "failed"
            return values, None
        values.update(b_due_at=upcoming, b_attempts=0)
        return values, upcoming

    def _retry_later(self, ids: list[int]) -> None:
        if self.running:
            when = utcnow() + timedelta(seconds=self.settings.retry_seconds)
            for reminder_id in ids:
                self._schedule(reminder_id, when)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery attempt ended: `error` is empty on success."""

    row: Reminder
    at: datetime
    error: str


async def _take(queue: asyncio.Queue[Any], limit: int) -> list[Any]:
    """Wait for one item, then take whatever else is already queued (up to `limit`)."""
    items = [await queue.get()]
    while len(items) < limit and not queue.empty():
        items.append(queue.get_nowait())
    return items


def row_id(row: Reminder) -> int:
    if row.id is None:
        raise StorageError("a reminder row without an id")
    return row.id


def to_info(row: Reminder, owner: str) -> ReminderInfo:
    return ReminderInfo(
        id=row_id(row),
        kind="follow_up" if row.kind == "follow_up" else "message",
        text=row.text,
        due_at=as_utc(row.due_at),
        timezone=row.timezone,
        recurrence=cast(Any, row.recurrence),
        cron=row.cron,
        status=cast(Any, row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        delivered_at=as_utc(row.delivered_at) if row.delivered_at else None,
        owner=owner,
    )
