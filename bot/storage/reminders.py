"""`ReminderStore`: the SQL behind reminders, the table the scheduler rebuilds from.

The delivery path (load at start, claim, settle) runs as `Database.run` units of work
with statements built once below; creating, listing and cancelling are one user's
requests and use a session, like the rest of the cold path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from bot.domain import ChatKind, ChatRef, UserRef
from bot.storage.database import Database
from bot.storage.models import Channel, Reminder, User

_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
_CHANNELS = Channel.__table__  # type: ignore[attr-defined]

_PENDING = sa_select(_REMINDERS.c.id, _REMINDERS.c.due_at, _REMINDERS.c.retry_at).where(
    _REMINDERS.c.status == "pending"
)
_PENDING_SINCE = _PENDING.where(_REMINDERS.c.created_at >= bindparam("since"))
_IS_CLAIMABLE = (
    _REMINDERS.c.id.in_(bindparam("ids", expanding=True)),
    _REMINDERS.c.status == "pending",
)
_COUNT_ATTEMPT = update(_REMINDERS).where(*_IS_CLAIMABLE).values(attempts=_REMINDERS.c.attempts + 1)
_CLAIMED = (
    sa_select(
        _REMINDERS,
        _USERS.c.platform.label("u_platform"),
        _USERS.c.platform_user_id.label("u_id"),
        _USERS.c.display_name.label("u_name"),
        _CHANNELS.c.platform.label("c_platform"),
        _CHANNELS.c.platform_chat_id.label("c_id"),
        _CHANNELS.c.kind.label("c_kind"),
    )
    .join(_USERS, _USERS.c.id == _REMINDERS.c.user_id)
    .join(_CHANNELS, _CHANNELS.c.id == _REMINDERS.c.channel_id)
    .where(*_IS_CLAIMABLE)
)
# One executemany per batch of outcomes; the status guard lets a cancel that landed
# during the send win.
_SETTLE = (
    update(_REMINDERS)
    .where(_REMINDERS.c.id == bindparam("b_id"), _REMINDERS.c.status == "pending")
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
_REMINDER_COLUMNS = tuple(column.name for column in _REMINDERS.columns)


class ReminderStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    # -- the delivery path ---------------------------------------------------------------

    async def pending(self, *, created_since: datetime | None = None) -> list[tuple[int, Any, Any]]:
        """(id, due_at, retry_at) of every pending reminder, or only those created since."""
        if created_since is None:
            rows = await self.db.run(lambda c: c.execute(_PENDING).all(), write=False)
        else:
            values = {"since": created_since}
            rows = await self.db.run(lambda c: c.execute(_PENDING_SINCE, values).all(), write=False)
        return [(int(row.id), row.due_at, row.retry_at) for row in rows]

    async def claim(self, ids: list[int]) -> list[tuple[Reminder, UserRef, ChatRef]]:
        """Count an attempt on each of `ids` still pending, and return those rows with
        their owner and chat (one transaction)."""
        values = {"ids": ids}

        def work(connection: Connection) -> Sequence[Any]:
            connection.execute(_COUNT_ATTEMPT, values)
            return connection.execute(_CLAIMED, values).all()

        rows = await self.db.run(work)
        return [
            (
                Reminder(**{name: getattr(row, name) for name in _REMINDER_COLUMNS}),
                UserRef(row.u_platform, row.u_id, row.u_name),
                ChatRef(row.c_platform, row.c_id, ChatKind(row.c_kind), ""),
            )
            for row in rows
        ]

    async def settle(self, changes: list[dict[str, Any]]) -> None:
        """Record the outcomes of a batch of attempts (the `b_*` values of `_SETTLE`)."""
        await self.db.run(lambda connection: connection.execute(_SETTLE, changes))

    # -- one user's requests -------------------------------------------------------------

    async def add_within_cap(self, row: Reminder, cap: int) -> int:
        """Insert `row` unless its user already has `cap` pending reminders; returns how
        many were pending before (so `>= cap` means it was refused and not inserted)."""
        async with self.db.write() as session:
            # Counted in the write that inserts: SQLite writes one at a time, and the user's
            # row lock makes PostgreSQL's concurrent creates of one user take turns. NO KEY
            # UPDATE, so it does not wait for transactions that merely reference the user.
            lock = select(User.id).where(User.id == row.user_id).with_for_update(key_share=True)
            await session.exec(lock)
            pending = (
                await session.exec(
                    select(func.count())
                    .select_from(Reminder)
                    .where(Reminder.user_id == row.user_id, Reminder.status == "pending")
                )
            ).one()
            if pending >= cap:
                return int(pending)
            session.add(row)
            await session.flush()
        return int(pending)

    async def list_for(
        self, user_id: int, *, include_done: bool, channel_id: int | None = None
    ) -> list[Reminder]:
        query = select(Reminder).where(Reminder.user_id == user_id)
        if channel_id is not None:
            query = query.where(Reminder.channel_id == channel_id)
        if not include_done:
            query = query.where(Reminder.status == "pending")
        async with self.db.read() as session:
            return list((await session.exec(query.order_by(col(Reminder.due_at)))).all())

    async def list_all(self, *, include_done: bool, limit: int) -> list[tuple[Reminder, str]]:
        """Every user's reminders with their owner's qualified id, soonest first."""
        query = select(Reminder, User.platform, User.platform_user_id).join(
            User, col(User.id) == Reminder.user_id
        )
        if not include_done:
            query = query.where(Reminder.status == "pending")
        async with self.db.read() as session:
            rows = (await session.exec(query.order_by(col(Reminder.due_at)).limit(limit))).all()
        return [(row, f"{platform}:{uid}") for row, platform, uid in rows]

    async def cancel(self, reminder_id: int, user_id: int | None) -> bool:
        """Cancel a pending reminder (of `user_id`, unless None); whether one was."""
        statement = update(Reminder).where(
            col(Reminder.id) == reminder_id, col(Reminder.status) == "pending"
        )
        if user_id is not None:
            statement = statement.where(col(Reminder.user_id) == user_id)
        async with self.db.write() as session:
            result = await session.exec(statement.values(status="cancelled", retry_at=None))
        return bool(result.rowcount)
