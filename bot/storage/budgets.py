"""`BudgetStore`: reservations of admitted turns, taken and settled in the database.

`reserve` reads what a user (and their channel) has spent and holds, asks the caller's
`decide` whether one more turn may start, and records the reservation, all in one
transaction that no other reservation of the same user or channel can interleave with:
on SQLite every write transaction starts with `BEGIN IMMEDIATE` (one writer at a time,
in every process on the file); on PostgreSQL the transaction first takes advisory
locks on the user and, when channel budgets apply, on the channel (always in that
order, so two reservations never wait for each other in a cycle). Reading the sums
and inserting under those locks is what lets N concurrent turns on N replicas spend
no more than the budget plus one turn's estimate.

A reservation counts towards the budgets and the turns in flight until it is settled
(the turn's real usage is then in `usage`) or expires (a process that crashed never
settles), and towards the rate limit for the minute after it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, case, delete, func, insert, select, text, update

from bot.storage.database import Database
from bot.storage.models import BudgetReservation, UsageRecord, utcnow

RATE_WINDOW = timedelta(seconds=60)
# The first key of PostgreSQL's two-key advisory locks (distinct from the one-key
# conversation and migration locks): which kind of thing the second key names.
_USER_LOCK, _CHANNEL_LOCK = 15_001, 15_002

_R = BudgetReservation.__table__.c  # type: ignore[attr-defined]
_U = UsageRecord.__table__.c  # type: ignore[attr-defined]
_LOCK = text("SELECT pg_advisory_xact_lock(:kind, :id)")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Spending:
    """What one user (and the channel of the turn) has spent and holds right now."""

    now: datetime
    user_day: int
    user_month: int
    user_reserved: int
    user_in_flight: int
    user_recent: int  # turns admitted in the last minute
    oldest_recent: datetime | None
    last_call: int  # tokens of the user's newest model call (0: none yet)
    channel_day: int = 0
    channel_month: int = 0
    channel_reserved: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    id: int
    tokens: int
    created_at: datetime


class BudgetStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def reserve(
        self,
        *,
        user_id: int,
        channel_id: int,
        with_channel: bool,
        decide: Callable[[Spending], tuple[T | None, int]],
        hold_seconds: int,
    ) -> tuple[T | None, Reservation | None]:
        """`decide(spending)` returns (a refusal, tokens to reserve): a refusal is passed
        back with no reservation made; otherwise a reservation of that many tokens is made
        in the same transaction and returned. `with_channel` also sums (and on PostgreSQL
        locks) the channel."""
        postgres = not self.db.is_sqlite

        def work(connection: Connection) -> tuple[T | None, Reservation | None]:
            if postgres:
                connection.execute(_LOCK, {"kind": _USER_LOCK, "id": user_id})
                if with_channel:
                    connection.execute(_LOCK, {"kind": _CHANNEL_LOCK, "id": channel_id})
            now = utcnow()
            # Finished and stale rows of anyone: settled rows expire a minute after they
            # were made (the rate window), abandoned ones `hold_seconds` after.
            connection.execute(delete(BudgetReservation).where(_R.expires_at < now))
            spending = _spending(connection, now, user_id, channel_id if with_channel else None)
            refusal, tokens = decide(spending)
            if refusal is not None:
                return refusal, None
            new_id = connection.execute(
                insert(BudgetReservation)
                .values(
                    user_id=user_id,
                    channel_id=channel_id,
                    tokens=tokens,
                    created_at=now,
                    expires_at=now + timedelta(seconds=hold_seconds),
                )
                .returning(_R.id)
            ).scalar_one()
            return None, Reservation(int(new_id), tokens, now)

        return await self.db.run(work)

    async def settle(self, reservation: Reservation) -> None:
        """The turn is over (its usage is stored): stop holding its tokens; the row stays
        for the rest of its rate-limit minute."""
        values = {"settled_at": utcnow(), "expires_at": reservation.created_at + RATE_WINDOW}
        statement = update(BudgetReservation).where(_R.id == reservation.id).values(**values)
        await self.db.run(lambda connection: connection.execute(statement))


def _spending(
    connection: Connection, now: datetime, user_id: int, channel_id: int | None
) -> Spending:
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    user_day, user_month = _used(connection, day_start, month_start, _U.user_id == user_id)
    open_ = _R.settled_at.is_(None)
    since = now - RATE_WINDOW
    held = connection.execute(
        select(
            func.coalesce(func.sum(case((open_, _R.tokens), else_=0)), 0),
            func.coalesce(func.sum(case((open_, 1), else_=0)), 0),
            func.coalesce(func.sum(case((_R.created_at >= since, 1), else_=0)), 0),
            func.min(case((_R.created_at >= since, _R.created_at), else_=None)),
        ).where(_R.user_id == user_id)
    ).one()
    last_call = connection.execute(
        select(_U.prompt_tokens + _U.completion_tokens)
        .where(_U.user_id == user_id)
        .order_by(_U.created_at.desc())
        .limit(1)
    ).scalar()
    spending: dict[str, Any] = {
        "now": now,
        "user_day": user_day,
        "user_month": user_month,
        "user_reserved": int(held[0]),
        "user_in_flight": int(held[1]),
        "user_recent": int(held[2]),
        "oldest_recent": _aware(held[3]),
        "last_call": int(last_call or 0),
    }
    if channel_id is not None:
        day, month = _used(connection, day_start, month_start, _U.channel_id == channel_id)
        reserved = connection.execute(
            select(func.coalesce(func.sum(_R.tokens), 0)).where(_R.channel_id == channel_id, open_)
        ).scalar_one()
        spending |= {"channel_day": day, "channel_month": month, "channel_reserved": reserved}
    return Spending(**spending)


def _used(
    connection: Connection, day_start: datetime, month_start: datetime, who: Any
) -> tuple[int, int]:
    tokens = _U.prompt_tokens + _U.completion_tokens
    day, month = connection.execute(
        select(
            func.coalesce(func.sum(case((_U.created_at >= day_start, tokens), else_=0)), 0),
            func.coalesce(func.sum(tokens), 0),
        ).where(who, _U.created_at >= min(day_start, month_start))
    ).one()
    return int(day), int(month)


def _aware(value: Any) -> datetime | None:
    """SQLite keeps timestamps without their zone (they are all UTC), as text when an
    aggregate hides the column's type."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
