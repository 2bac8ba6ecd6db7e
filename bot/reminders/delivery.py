"""Delivery of one reminder firing: what to send, and the row's state after the attempt.

Nothing here touches the database or the clock: `compose` turns a claimed row into the
text (a model turn first, for a follow-up), `next_state` turns an attempt's outcome into
the row's new values and the time its job must run next. bot/reminders/clock.py runs
them between its group-committed claims and settles.
"""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from babel.dates import format_datetime

from bot.config import ReminderSettings
from bot.domain import (
    ChatRef,
    InputAction,
    InputAnswer,
    InputQuestion,
    ReminderInfo,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.errors import StorageError
from bot.i18n import _, current_locale
from bot.reminders.recurrence import as_utc, next_occurrence
from bot.storage.models import Reminder
from bot.surface import Answer, ApprovalPrompt

if TYPE_CHECKING:
    from bot.turn.engine import Engine

log = logging.getLogger(__name__)


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

    async def thinking(self, delta: str) -> None:
        return None

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        self.tools.append(call.name)

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        return None

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        return None

    async def finish(self, text: str) -> None:
        self.text = text

    async def fail(self, text: str) -> None:
        self.error = text

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        # Nobody is there to press a button at fire time: not approved (standing
        # approvals and "never ask" rules still apply, before any question).
        return Answer.DENIED

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        return InputAnswer(InputAction.CANCEL)  # nobody is there to answer at fire time


class DeliveryFailed(Exception):
    """This attempt did not reach the chat; it will be retried."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one delivery attempt ended: `error` is empty on success."""

    row: Reminder
    at: datetime
    error: str


def is_late(settings: ReminderSettings, row: Reminder, now: datetime) -> bool:
    """Whether this attempt starts more than `late_after_seconds` after the time it
    was scheduled for: `due_at`, or for a retry the `retry_at` the backoff chose.

    "Late" tells the reader what they cannot otherwise know: Parley was down or
    backlogged when it should have acted. A retry that runs when its backoff said is
    delivery working as designed (the first at `retry_seconds`, the whole schedule
    bounded by `max_attempts`), so it is not called late; one that starts late after
    its own retry time is.
    """
    scheduled = as_utc(row.retry_at or row.due_at)
    return (now - scheduled).total_seconds() > settings.late_after_seconds


async def compose(
    row: Reminder, user: UserRef, chat: ChatRef, late: bool, engine: Engine | None
) -> str:
    """The text to send for this firing, in the reader's language; a follow-up runs its
    model turn first."""
    due = ""
    if late:
        zone = zoneinfo.ZoneInfo(row.timezone)
        local = as_utc(row.due_at).astimezone(zone)
        due = _(
            "{when} {timezone}",
            when=format_datetime(local, "medium", tzinfo=zone, locale=current_locale()),
            timezone=row.timezone,
        )
    if row.kind != "follow_up":
        if due:
            return _("⏰ Reminder (late: this was due {due}): {text}", due=due, text=row.text)
        return _("⏰ Reminder: {text}", text=row.text)
    if engine is None:
        raise DeliveryFailed("follow-ups need the engine, which is not running here")
    surface = CollectingSurface()
    outcome = await engine.run_prompt(user, chat, row.text, surface, thread_key=row.thread_key)
    if surface.error or outcome.error or not surface.text.strip():
        reason = surface.error or outcome.error or "empty answer"
        raise DeliveryFailed(f"the follow-up turn failed: {reason}")
    if due:
        return _("⏰ Follow-up (late: this was due {due}): {text}", due=due, text=surface.text)
    return _("⏰ Follow-up: {text}", text=surface.text)


def next_state(
    settings: ReminderSettings, outcome: Outcome
) -> tuple[dict[str, Any], datetime | None]:
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
    if row.attempts < settings.max_attempts:
        retry_at = now + timedelta(seconds=settings.retry_seconds * 2 ** (row.attempts - 1))
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
