"""`ReminderBook`: reminders created, listed and cancelled, in the `reminders` table.

The book is what the reminder tools and the CLI use, built early (the engine's tools need
it). It stores; it does not schedule. The clock (clock.py), built last because it needs
the engine and the platforms' messengers, watches the book: a reminder created or
cancelled is told to every watching clock, and a clock that is not running (a standby
replica's) ignores it, since the table is the truth and the leader's clock picks the
row up from there.
"""

from __future__ import annotations

import logging
import zoneinfo
from datetime import datetime
from typing import Protocol

from bot.config import ReminderSettings
from bot.domain import ChatRef, ReminderInfo, ReminderRequest, UserRef
from bot.errors import ToolError
from bot.reminders.delivery import row_id, to_info
from bot.reminders.recurrence import as_utc, duration, shortest_gap
from bot.storage import ConversationStore, Database
from bot.storage.models import Reminder
from bot.storage.reminders import ReminderStore

log = logging.getLogger(__name__)


class Watcher(Protocol):
    """What the book tells a clock."""

    def created(self, reminder_id: int, due_at: datetime) -> None: ...

    def cancelled(self, reminder_id: int) -> None: ...


class ReminderBook:
    """Stores reminders within the caps; a `bot.domain.ReminderBook` for tools."""

    def __init__(
        self, database: Database, store: ConversationStore, settings: ReminderSettings
    ) -> None:
        self.reminders = ReminderStore(database)
        self.store = store
        self.settings = settings
        self._clocks: list[Watcher] = []

    def watch(self, clock: Watcher) -> None:
        """Tell `clock` of every reminder created or cancelled from now on."""
        self._clocks.append(clock)

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
        for clock in self._clocks:
            clock.created(row_id(row), row.due_at)
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
            for clock in self._clocks:
                clock.cancelled(reminder_id)
            log.info("reminder %d cancelled", reminder_id)
        return cancelled
