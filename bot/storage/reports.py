"""`ReportStore`: usage for the charts and the console's paginated lists.

Every list the console shows is paginated by keyset or a bounded OFFSET over an index,
so pages stay fast with many channels and messages (tests/bench/console.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, update
from sqlalchemy import select as sa_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.database import Database
from bot.storage.models import (
    Channel,
    Conversation,
    Message,
    Reminder,
    UsageRecord,
    User,
    utcnow,
)

PAGE_SIZE = 50
USERS = User.__table__  # type: ignore[attr-defined]
CHANNELS = Channel.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    page: int
    has_next: bool


class ReportStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def tokens_per_day(self, *, days: int = 30, top: int = 6) -> list[tuple[str, str, int]]:
        """(day, channel label, tokens) over the last `days` days for the usage chart: the
        `top` channels by tokens each get their own label, all others are summed as "other"
        in SQL (so 10,000 channels still make at most days * (top + 1) rows)."""
        u = UsageRecord.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        since = utcnow() - timedelta(days=days)
        tokens = func.sum(u.prompt_tokens + u.completion_tokens)
        async with self.db.read() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            # `+ 0`: SQLite would otherwise walk the channel index and look up every row;
            # this way it reads the covering (created_at, channel, tokens) index.
            channel = (u.channel_id + 0).label("channel")
            leaders = (
                await run_statement(
                    session,
                    sa_select(channel)
                    .where(u.created_at >= since)
                    .group_by(channel)
                    .order_by(tokens.desc())
                    .limit(top),
                )
            ).all()
            leader_ids = [int(row[0]) for row in leaders]
            # SQLite keeps timestamps as ISO text: the first 10 characters are the UTC day.
            day = (
                cast(u.created_at, Date)
                if dialect == "postgresql"
                else func.substr(u.created_at, 1, 10)
            ).label("day")
            who = (
                case((u.channel_id.in_(leader_ids), u.channel_id), else_=0)
                if leader_ids
                else literal(0)
            ).label("who")
            rows = (
                await run_statement(
                    session,
                    sa_select(day, who, tokens.label("tokens"))
                    .where(u.created_at >= since)
                    .group_by(day, who)
                    .order_by(day),
                )
            ).all()
            names = {}
            if leader_ids:
                found = await run_statement(
                    session,
                    sa_select(c.id, c.platform, c.platform_chat_id, c.title).where(
                        c.id.in_(leader_ids)
                    ),
                )
                names = {
                    int(r.id): f"{r.platform}:{r.title or r.platform_chat_id}" for r in found.all()
                }
        return [(str(row.day), names.get(int(row.who), "other"), int(row.tokens)) for row in rows]

    async def user_usage(self, user_ids: Sequence[int], since: datetime) -> dict[int, int]:
        if not user_ids:
            return {}
        u = UsageRecord.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(u.user_id, func.sum(u.prompt_tokens + u.completion_tokens))
            .where(u.user_id.in_(list(user_ids)), u.created_at >= since)
            .group_by(u.user_id)
        )
        async with self.db.read() as session:
            return {int(k): int(v) for k, v in (await run_statement(session, query)).all()}

    # -- console lists ----------------------------------------------------------------------

    async def channels_page(self, page: int = 1) -> Page:
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = sa_select(
            c.id, c.platform, c.platform_chat_id, c.kind, c.title, c.created_at
        ).order_by(c.id.desc())
        return await self._page(query, page)

    async def users_page(self, page: int = 1) -> Page:
        u = User.__table__.c  # type: ignore[attr-defined]
        query = sa_select(
            u.id, u.platform, u.platform_user_id, u.display_name, u.timezone, u.created_at
        ).order_by(u.id.desc())
        return await self._page(query, page)

    async def set_user_timezone(self, user_id: int, timezone: str | None) -> None:
        async with self.db.write() as session:
            await run_statement(
                session,
                update(User).where(User.id == user_id).values(timezone=timezone or None),  # type: ignore[arg-type]
            )

    async def user(self, user_id: int) -> Any:
        u = User.__table__.c  # type: ignore[attr-defined]
        async with self.db.read() as session:
            return (await run_statement(session, sa_select(u).where(u.id == user_id))).first()

    async def conversations_page(self, page: int = 1, channel_id: int | None = None) -> Page:
        v = Conversation.__table__.c  # type: ignore[attr-defined]
        u = User.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(
                v.id,
                v.thread_key,
                v.created_at,
                v.closed_at,
                u.platform_user_id,
                u.display_name,
                c.platform,
                c.platform_chat_id,
                c.title,
            )
            .join(USERS, u.id == v.user_id)
            .join(CHANNELS, c.id == v.channel_id)
            .order_by(v.id.desc())
        )
        if channel_id is not None:
            query = query.where(v.channel_id == channel_id)
        return await self._page(query, page)

    async def messages_page(self, conversation_id: int, page: int = 1) -> Page:
        m = Message.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(m.id, m.role, m.content, m.tool_calls, m.name, m.is_error, m.created_at)
            .where(m.conversation_id == conversation_id)
            .order_by(m.id)
        )
        return await self._page(query, page)

    async def reminders_page(self, page: int = 1, *, status: str = "pending") -> Page:
        r = Reminder.__table__.c  # type: ignore[attr-defined]
        u = User.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(
                r.id,
                r.kind,
                r.text,
                r.due_at,
                r.timezone,
                r.recurrence,
                r.cron,
                r.status,
                r.attempts,
                r.last_error,
                u.platform,
                u.platform_user_id,
                u.display_name,
                c.platform_chat_id,
                c.title,
            )
            .join(USERS, u.id == r.user_id)
            .join(CHANNELS, c.id == r.channel_id)
            .where(r.status == status)
            .order_by(r.due_at, r.id)
        )
        return await self._page(query, page)

    async def _page(self, query: Any, page: int) -> Page:
        return await page_of(self.db, query, page)


async def page_of(database: Database, query: Any, page: int) -> Page:
    page = max(1, page)
    query = query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
    async with database.read() as session:
        rows = list((await run_statement(session, query)).all())
    return Page(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


async def run_statement(session: AsyncSession, statement: Any) -> Any:
    """Run a Core statement (sqlmodel's `exec` types only its own selects)."""
    return await session.exec(statement)
