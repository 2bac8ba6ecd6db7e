"""`ActivityStore`: the SQL behind the console's overview.

Turns are written in batches by `bot.ops.activity.ActivityRecorder` (one row per finished
turn, `turn_log`); everything else the overview shows (reminders, the busiest channels and
users) is read from the tables that already hold it. Day-by-day counts are grouped in SQL;
percentiles and the per-model and per-tool sums are computed in Python over at most
`MAX_ROWS` recent turns, so one page view never reads an unbounded table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, cast, delete, func, insert
from sqlalchemy import select as sa_select

from bot.storage.database import Database
from bot.storage.models import Channel, Reminder, TurnRecord, UsageRecord, User, utcnow

MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class TurnSample:
    seconds: float
    vendor: str
    models: dict[str, list[int]]
    tools: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class FailedTurn:
    turn_id: str
    finished_at: datetime
    platform: str
    error: str


@dataclass(frozen=True, slots=True)
class Busiest:
    """A channel or a user by name, with its platform id, and its use."""

    platform: str
    platform_id: str
    name: str
    tokens: int
    calls: int


@dataclass(frozen=True, slots=True)
class ReminderCounts:
    due_soon: int  # pending, due within a day
    overdue: int  # pending, due before now
    failed: int  # given up on, due in the last week


class ActivityStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def record(self, rows: Sequence[dict[str, Any]], *, keep_days: int) -> None:
        """Store finished turns (`turn_log` columns as dicts; one executemany, off the ORM)
        and forget those older than `keep_days`."""
        table = TurnRecord.__table__  # type: ignore[attr-defined]
        cutoff = utcnow() - timedelta(days=keep_days)

        def work(connection: Connection) -> None:
            connection.execute(insert(table), list(rows))
            connection.execute(delete(table).where(table.c.finished_at < cutoff))

        await self.db.run(work)

    async def turns_per_day(self, *, days: int) -> dict[str, tuple[int, int]]:
        """{"YYYY-MM-DD": (answered, failed)} for the last `days` UTC days with turns."""
        t = TurnRecord.__table__.c  # type: ignore[attr-defined]
        since = _day_start(days)
        async with self.db.read() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            # SQLite keeps timestamps as ISO text: the first 10 characters are the UTC day.
            day = (
                cast(t.finished_at, Date)
                if dialect == "postgresql"
                else func.substr(t.finished_at, 1, 10)
            ).label("day")
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    sa_select(day, t.outcome, func.count())
                    .where(t.finished_at >= since)
                    .group_by(day, t.outcome)
                )
            ).all()
        counts: dict[str, tuple[int, int]] = {}
        for day_value, outcome, count in rows:
            key = str(day_value)[:10]
            answered, failed = counts.get(key, (0, 0))
            if outcome == "ok":
                answered += int(count)
            else:
                failed += int(count)
            counts[key] = (answered, failed)
        return counts

    async def samples(self, *, since: datetime) -> list[TurnSample]:
        """The newest turns since `since` (at most MAX_ROWS): latency, models, tools."""
        t = TurnRecord.__table__.c  # type: ignore[attr-defined]
        async with self.db.read() as session:
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    sa_select(t.seconds, t.vendor, t.models, t.tools)
                    .where(t.finished_at >= since)
                    .order_by(t.finished_at.desc())
                    .limit(MAX_ROWS)
                )
            ).all()
        return [TurnSample(float(s), v, m or {}, tl or {}) for s, v, m, tl in rows]

    async def newest_failures(self, *, limit: int = 10) -> list[FailedTurn]:
        t = TurnRecord.__table__.c  # type: ignore[attr-defined]
        async with self.db.read() as session:
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    sa_select(t.turn_id, t.finished_at, t.platform, t.error)
                    .where(t.outcome != "ok")
                    .order_by(t.id.desc())
                    .limit(limit)
                )
            ).all()
        return [FailedTurn(*row) for row in rows]

    async def last_turn_per_platform(self) -> dict[str, datetime]:
        t = TurnRecord.__table__.c  # type: ignore[attr-defined]
        async with self.db.read() as session:
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    sa_select(t.platform, func.max(t.finished_at)).group_by(t.platform)
                )
            ).all()
        return {platform: _aware(at) for platform, at in rows}

    async def reminder_counts(self) -> ReminderCounts:
        r = Reminder.__table__.c  # type: ignore[attr-defined]
        now = utcnow()
        async with self.db.read() as session:

            async def count(*where: Any) -> int:
                result = await session.exec(  # type: ignore[call-overload]
                    sa_select(func.count()).select_from(Reminder.__table__).where(*where)  # type: ignore[attr-defined]
                )
                return int(result.scalar_one())

            return ReminderCounts(
                due_soon=await count(
                    r.status == "pending", r.due_at >= now, r.due_at < now + timedelta(days=1)
                ),
                overdue=await count(r.status == "pending", r.due_at < now),
                failed=await count(r.status == "failed", r.due_at >= now - timedelta(days=7)),
            )

    async def busiest(self, *, since: datetime, by: str, limit: int = 8) -> list[Busiest]:
        """The channels (`by="channel"`) or users (`by="user"`) that used the most tokens."""
        u = UsageRecord.__table__.c  # type: ignore[attr-defined]
        if by == "channel":
            c = Channel.__table__.c  # type: ignore[attr-defined]
            key, who = u.channel_id, (c.id, c.platform, c.platform_chat_id, c.title)
            table, join = Channel.__table__, c.id == u.channel_id  # type: ignore[attr-defined]
        else:
            c = User.__table__.c  # type: ignore[attr-defined]
            key, who = u.user_id, (c.id, c.platform, c.platform_user_id, c.display_name)
            table, join = User.__table__, c.id == u.user_id  # type: ignore[attr-defined]
        tokens = func.sum(u.prompt_tokens + u.completion_tokens).label("tokens")
        async with self.db.read() as session:
            rows = (
                await session.exec(  # type: ignore[call-overload]
                    sa_select(*who, tokens, func.count(key))
                    .select_from(UsageRecord.__table__.join(table, join))  # type: ignore[attr-defined]
                    .where(u.created_at >= since)
                    .group_by(*who)
                    .order_by(tokens.desc())
                    .limit(limit)
                )
            ).all()
        return [
            Busiest(platform, str(pid), name or "", int(total or 0), int(calls))
            for _, platform, pid, name, total, calls in rows
        ]


def _day_start(days: int) -> datetime:
    """Midnight UTC `days - 1` days ago: the first of the last `days` calendar days."""
    now = utcnow()
    return (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
