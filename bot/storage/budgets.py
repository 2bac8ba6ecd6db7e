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
(the turn's real usage is then in `usage`), released (the process holding it died: the
sweep that resumes its turns calls `release_dead`) or expires, and towards the rate limit
for the minute after it was made. Before each model call a turn `top_up`s its
reservation to what that call may use, in the same kind of transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)

from bot.storage.database import Database
from bot.storage.models import BudgetReservation, Lease, UsageRecord, utcnow

RATE_WINDOW = timedelta(seconds=60)
# The first key of PostgreSQL's two-key advisory locks (distinct from the one-key
# conversation and migration locks): which kind of thing the second key names.
_USER_LOCK, _CHANNEL_LOCK = 15_001, 15_002

_TABLE = BudgetReservation.__table__  # type: ignore[attr-defined]
_LEASES = Lease.__table__.c  # type: ignore[attr-defined]
_R = _TABLE.c
_U = UsageRecord.__table__.c  # type: ignore[attr-defined]
_LOCK = text("SELECT pg_advisory_xact_lock(:kind, :id)")

# Statements built once (a turn runs them all): building and cache-keying them per call
# cost more CPU than running them.
_TOKENS = _U.prompt_tokens + _U.completion_tokens
_OPEN = _R.settled_at.is_(None)
_RECENT = _R.created_at >= bindparam("recent")


def _sums(*columns: Any, where: Any) -> list[Any]:
    """Each of `columns` summed over `where`, as scalar subqueries of one SELECT."""
    return [
        select(func.coalesce(func.sum(column), 0)).where(*where).scalar_subquery()
        for column in columns
    ]


_TODAY = case((_U.created_at >= bindparam("day"), _TOKENS), else_=0)
_THIS_MONTH = (_U.created_at >= bindparam("month"),)
_EXPIRE = delete(_TABLE).where(_R.expires_at < bindparam("now"))
# One round trip for the user: used today and this month, held, in flight, admitted in
# the last minute (and the oldest of those), the newest model call's tokens.
_USER = select(
    *_sums(_TODAY, _TOKENS, where=(_U.user_id == bindparam("user"), *_THIS_MONTH)),
    *_sums(
        case((_OPEN, _R.tokens), else_=0),
        case((_OPEN, 1), else_=0),
        case((_RECENT, 1), else_=0),
        where=(_R.user_id == bindparam("user"),),
    ),
    select(func.min(_R.created_at))
    .where(_R.user_id == bindparam("user"), _RECENT)
    .scalar_subquery(),
    select(_TOKENS)
    .where(_U.user_id == bindparam("user"))
    .order_by(_U.created_at.desc())
    .limit(1)
    .scalar_subquery(),
)
_CHANNEL = select(
    *_sums(_TODAY, _TOKENS, where=(_U.channel_id == bindparam("channel"), *_THIS_MONTH)),
    *_sums(_R.tokens, where=(_R.channel_id == bindparam("channel"), _OPEN)),
)
_RESERVE = insert(_TABLE).returning(_R.id)
_SETTLE = (
    update(_TABLE)
    .where(_R.id == bindparam("b_id"))
    .values(settled_at=bindparam("b_settled"), expires_at=bindparam("b_expires"))
)

# A running turn's reservation held for longer; never one already settled.
_RENEW = (
    update(_TABLE)
    .where(_R.id == bindparam("b_id"), _OPEN)
    .values(expires_at=bindparam("b_expires"))
)

# Open reservations whose process's lease is gone or expired: nobody will settle them.
_RELEASE_DEAD = (
    update(_TABLE)
    .where(
        _OPEN,
        _R.holder.is_not(None),
        ~exists().where(_LEASES.name == _R.holder, _LEASES.expires_at >= bindparam("now")),
    )
    .values(settled_at=bindparam("now"), expires_at=bindparam("now"))
)
_OWN = select(_R.tokens).where(_R.id == bindparam("b_id"), _OPEN)
_RESIZE = update(_TABLE).where(_R.id == bindparam("b_id")).values(tokens=bindparam("b_tokens"))

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
    user_id: int = 0
    channel_id: int = 0


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
        holder: str | None = None,
    ) -> tuple[T | None, Reservation | None]:
        """`decide(spending)` returns (a refusal, tokens to reserve): a refusal is passed
        back with no reservation made; otherwise a reservation of that many tokens is made
        in the same transaction and returned. `with_channel` also sums (and on PostgreSQL
        locks) the channel; `holder` is the lease of the process running the turn."""

        def work(connection: Connection) -> tuple[T | None, Reservation | None]:
            self._lock(connection, user_id, channel_id if with_channel else None)
            now = utcnow()
            # Finished and stale rows of anyone: settled rows expire a minute after they
            # were made (the rate window), abandoned ones `hold_seconds` after.
            connection.execute(_EXPIRE, {"now": now})
            spending = _spending(connection, now, user_id, channel_id if with_channel else None)
            refusal, tokens = decide(spending)
            if refusal is not None:
                return refusal, None
            reserved = _reserve(connection, user_id, channel_id, tokens, now, hold_seconds, holder)
            return None, reserved

        return await self.db.run(work)

    def _lock(self, connection: Connection, user_id: int, channel_id: int | None) -> None:
        if self.db.is_sqlite:
            return  # BEGIN IMMEDIATE already serialises every writer
        connection.execute(_LOCK, {"kind": _USER_LOCK, "id": user_id})
        if channel_id is not None:
            connection.execute(_LOCK, {"kind": _CHANNEL_LOCK, "id": channel_id})

    async def top_up(
        self,
        reservation: Reservation,
        tokens: int,
        *,
        with_channel: bool,
        decide: Callable[[Spending], T | None],
        hold_seconds: int,
        holder: str | None = None,
    ) -> tuple[T | None, Reservation]:
        """Hold `tokens` for the turn's next model call instead of what it holds now,
        if `decide` (given the spending of everyone else: this reservation's own tokens
        left out) finds no refusal. A reservation that lapsed meanwhile is made again."""
        user_id, channel_id = reservation.user_id, reservation.channel_id

        def work(connection: Connection) -> tuple[T | None, Reservation]:
            self._lock(connection, user_id, channel_id if with_channel else None)
            now = utcnow()
            own = connection.execute(_OWN, {"b_id": reservation.id}).scalar_one_or_none()
            spending = _spending(connection, now, user_id, channel_id if with_channel else None)
            held = int(own or 0)
            others = replace(
                spending,
                user_reserved=spending.user_reserved - held,
                channel_reserved=spending.channel_reserved - (held if with_channel else 0),
            )
            refusal = decide(others)
            if refusal is not None:
                return refusal, reservation
            if own is not None:
                connection.execute(_RESIZE, {"b_id": reservation.id, "b_tokens": tokens})
                return None, replace(reservation, tokens=tokens)
            reserved = _reserve(connection, user_id, channel_id, tokens, now, hold_seconds, holder)
            return None, reserved

        return await self.db.run(work)

    async def release_dead(self) -> int:
        """Settle the open reservations of processes whose lease is gone (they died
        mid-turn): how many. Their turns are resumed, and reserve anew."""
        values = {"now": utcnow()}
        return int(
            await self.db.run(lambda connection: connection.execute(_RELEASE_DEAD, values).rowcount)
        )

    async def renew(self, reservation: Reservation, hold_seconds: int) -> None:
        """The turn still runs (waiting on a slow model or an approval): hold its tokens
        for another `hold_seconds` from now."""
        values = {"b_id": reservation.id, "b_expires": utcnow() + timedelta(seconds=hold_seconds)}
        await self.db.run(lambda connection: connection.execute(_RENEW, values))

    async def expires_at(self, reservation: Reservation) -> datetime | None:
        """When the reservation stops counting (None once it is gone)."""
        statement = select(_R.expires_at).where(_R.id == reservation.id)
        moment = await self.db.run(
            lambda connection: connection.execute(statement).scalar_one_or_none(), write=False
        )
        return _aware(moment) if moment is not None else None

    async def settle(self, reservation: Reservation) -> None:
        """The turn is over (its usage is stored): stop holding its tokens; the row stays
        for the rest of its rate-limit minute."""
        values = {
            "b_id": reservation.id,
            "b_settled": utcnow(),
            "b_expires": reservation.created_at + RATE_WINDOW,
        }
        await self.db.run(lambda connection: connection.execute(_SETTLE, values))


def _spending(
    connection: Connection, now: datetime, user_id: int, channel_id: int | None
) -> Spending:
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = {"day": day_start, "month": day_start.replace(day=1), "recent": now - RATE_WINDOW}
    row = connection.execute(_USER, {**when, "user": user_id}).one()
    spending: dict[str, Any] = {
        "now": now,
        "user_day": int(row[0]),
        "user_month": int(row[1]),
        "user_reserved": int(row[2]),
        "user_in_flight": int(row[3]),
        "user_recent": int(row[4]),
        "oldest_recent": _aware(row[5]),
        "last_call": int(row[6] or 0),
    }
    if channel_id is not None:
        day, month, reserved = connection.execute(_CHANNEL, {**when, "channel": channel_id}).one()
        spending |= {
            "channel_day": int(day),
            "channel_month": int(month),
            "channel_reserved": int(reserved),
        }
    return Spending(**spending)


def _aware(value: Any) -> datetime | None:
    """SQLite keeps timestamps without their zone (they are all UTC), as text when an
    aggregate hides the column's type."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _reserve(
    connection: Connection,
    user_id: int,
    channel_id: int,
    tokens: int,
    now: datetime,
    hold_seconds: int,
    holder: str | None,
) -> Reservation:
    """A new reservation of `tokens`, held `hold_seconds` unless renewed or settled."""
    values = {
        "user_id": user_id,
        "channel_id": channel_id,
        "tokens": tokens,
        "created_at": now,
        "expires_at": now + timedelta(seconds=hold_seconds),
        "settled_at": None,
        "holder": holder,
    }
    new_id = connection.execute(_RESERVE, values).scalar_one()
    return Reservation(int(new_id), tokens, now, user_id, channel_id)
