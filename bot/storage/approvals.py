"""`ApprovalStore`: the SQL behind approvals (bot/approvals/gate.py).

A press is one transaction that reads the question and moves it from `open` to its
answer only if it is still open, unexpired, still waited for and the presser's; so two
presses (on two replicas) can never both answer it, and an "Always allow" press writes its
grant in the same transaction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database
from bot.storage.models import ApprovalGrant, ApprovalRequest, ApprovalRule, ApprovalTrust

_REQUESTS = ApprovalRequest.__table__  # type: ignore[attr-defined]
_GRANTS = ApprovalGrant.__table__  # type: ignore[attr-defined]
_RULES = ApprovalRule.__table__  # type: ignore[attr-defined]
_TRUST = ApprovalTrust.__table__  # type: ignore[attr-defined]

OPEN = "open"
EXPIRED = "expired"


class PressResult(enum.Enum):
    ANSWERED = "answered"
    GONE = "gone"  # unknown token, or answered already
    EXPIRED = "expired"  # timed out, or the process that asked is gone
    NOT_YOURS = "not yours"


@dataclass(frozen=True, slots=True)
class QuestionRow:
    token: str
    asker: str
    place: str
    channel_id: int
    tool: str
    state: str
    may_remember: bool
    full_text: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: int
    asker: str
    place: str
    channel_id: int
    tool: str
    created_at: datetime


def _question(row: Any) -> QuestionRow:
    return QuestionRow(
        row.token,
        row.asker,
        row.place,
        row.channel_id,
        row.tool,
        row.state,
        bool(row.may_remember),
        row.full_text,
        row.expires_at,
    )


def _grant(row: Any) -> GrantRow:
    return GrantRow(row.id, row.asker, row.place, row.channel_id, row.tool, row.created_at)


class ApprovalStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._insert = sqlite.insert if database.is_sqlite else postgresql.insert

    # -- questions -------------------------------------------------------------------------

    async def open(
        self,
        *,
        token: str,
        asker: str,
        place: str,
        channel_id: int,
        tool: str,
        call: str,
        full_text: str,
        may_remember: bool,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        values = {
            "token": token,
            "asker": asker,
            "place": place,
            "channel_id": channel_id,
            "tool": tool,
            "call": call,
            "full_text": full_text,
            "may_remember": may_remember,
            "state": OPEN,
            "created_at": now,
            "seen_at": now,
            "expires_at": expires_at,
        }
        await self.db.run(lambda connection: connection.execute(_REQUESTS.insert(), values))

    async def waiting(self, token: str, now: datetime) -> str | None:
        """The asker's process is still waiting: note it, and say the question's state."""
        statement = (
            update(_REQUESTS)
            .where(_REQUESTS.c.token == token, _REQUESTS.c.state == OPEN)
            .values(seen_at=now)
            .returning(_REQUESTS.c.state)
        )

        def work(connection: Connection) -> str | None:
            row = connection.execute(statement).first()
            if row is not None:
                return str(row[0])
            found = connection.execute(
                select(_REQUESTS.c.state).where(_REQUESTS.c.token == token)
            ).first()
            return str(found[0]) if found is not None else None

        return await self.db.run(work)

    async def question(self, token: str) -> QuestionRow | None:
        def work(connection: Connection) -> QuestionRow | None:
            row = connection.execute(select(_REQUESTS).where(_REQUESTS.c.token == token)).first()
            return _question(row) if row is not None else None

        return await self.db.run(work, write=False)

    async def press(
        self, token: str, presser: str, answer: str, *, now: datetime, alive_after: datetime
    ) -> tuple[PressResult, QuestionRow | None]:
        """Answer the question if it is open, unexpired, waited for and `presser`'s;
        "always" also stores the grant, if the card offered it (`may_remember`): a press
        of a button the card did not have (a forged one) counts as "once". Returns what
        happened and the question as it was."""

        def work(connection: Connection) -> tuple[PressResult, QuestionRow | None]:
            row = connection.execute(select(_REQUESTS).where(_REQUESTS.c.token == token)).first()
            if row is None:
                return PressResult.GONE, None
            found = _question(row)
            if found.state == EXPIRED:
                return PressResult.EXPIRED, found
            if found.state != OPEN:
                return PressResult.GONE, found
            if _aware(found.expires_at) <= now or _aware(row.seen_at) < alive_after:
                connection.execute(
                    update(_REQUESTS)
                    .where(_REQUESTS.c.token == token, _REQUESTS.c.state == OPEN)
                    .values(state=EXPIRED, answered_at=now)
                )
                return PressResult.EXPIRED, found
            if found.asker != presser:
                return PressResult.NOT_YOURS, found
            recorded = answer if answer != "always" or found.may_remember else "once"
            changed = connection.execute(
                update(_REQUESTS)
                .where(_REQUESTS.c.token == token, _REQUESTS.c.state == OPEN)
                .values(state=recorded, answered_at=now)
            ).rowcount
            if not changed:
                return PressResult.GONE, found
            if recorded == "always":
                connection.execute(
                    self._insert(_GRANTS)
                    .values(
                        asker=found.asker,
                        place=found.place,
                        channel_id=found.channel_id,
                        tool=found.tool,
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                )
            return PressResult.ANSWERED, found

        return await self.db.run(work)

    async def expire(self, token: str, now: datetime) -> str | None:
        """Close the question as expired unless it was answered; its final state."""

        def work(connection: Connection) -> str | None:
            connection.execute(
                update(_REQUESTS)
                .where(_REQUESTS.c.token == token, _REQUESTS.c.state == OPEN)
                .values(state=EXPIRED, answered_at=now)
            )
            row = connection.execute(
                select(_REQUESTS.c.state).where(_REQUESTS.c.token == token)
            ).first()
            return str(row[0]) if row is not None else None

        return await self.db.run(work)

    async def prune(self, before: datetime) -> int:
        """Forget questions closed or expired before `before` (the audit log keeps them)."""
        statement = delete(_REQUESTS).where(_REQUESTS.c.expires_at < before)
        return int(await self.db.run(lambda connection: connection.execute(statement).rowcount))

    # -- grants ----------------------------------------------------------------------------

    async def has_grant(self, asker: str, channel_id: int, tool: str) -> bool:
        statement = select(_GRANTS.c.id).where(
            _GRANTS.c.asker == asker, _GRANTS.c.channel_id == channel_id, _GRANTS.c.tool == tool
        )
        return await self.db.run(
            lambda connection: connection.execute(statement).first() is not None, write=False
        )

    async def grants(
        self, *, asker: str | None = None, channel_id: int | None = None, limit: int = 200
    ) -> list[GrantRow]:
        statement = select(_GRANTS).order_by(_GRANTS.c.id.desc()).limit(limit)
        if asker is not None:
            statement = statement.where(_GRANTS.c.asker == asker)
        if channel_id is not None:
            statement = statement.where(_GRANTS.c.channel_id == channel_id)
        return await self.db.run(
            lambda connection: [_grant(row) for row in connection.execute(statement)], write=False
        )

    async def revoke(self, grant_id: int, *, asker: str | None = None) -> GrantRow | None:
        """Delete a grant (only `asker`'s own when given); the grant, or None if not found."""

        def work(connection: Connection) -> GrantRow | None:
            query = select(_GRANTS).where(_GRANTS.c.id == grant_id)
            if asker is not None:
                query = query.where(_GRANTS.c.asker == asker)
            row = connection.execute(query).first()
            if row is None:
                return None
            connection.execute(delete(_GRANTS).where(_GRANTS.c.id == grant_id))
            return _grant(row)

        return await self.db.run(work)

    # -- admins' rules ---------------------------------------------------------------------

    async def rules(self, channel_id: int) -> dict[str, str]:
        statement = select(_RULES.c.tool, _RULES.c.mode).where(_RULES.c.channel_id == channel_id)
        return await self.db.run(
            lambda connection: {row.tool: row.mode for row in connection.execute(statement)},
            write=False,
        )

    async def set_rule(
        self, channel_id: int, tool: str, mode: str | None, *, by: str, now: datetime
    ) -> None:
        """Set (or with None, remove) the rule for `tool` in the channel."""
        if mode is None:
            statement: Any = delete(_RULES).where(
                _RULES.c.channel_id == channel_id, _RULES.c.tool == tool
            )
        else:
            insert = self._insert(_RULES).values(
                channel_id=channel_id, tool=tool, mode=mode, set_by=by, set_at=now
            )
            statement = insert.on_conflict_do_update(
                index_elements=[_RULES.c.channel_id, _RULES.c.tool],
                set_={"mode": mode, "set_by": by, "set_at": now},
            )
        await self.db.run(lambda connection: connection.execute(statement))

    # -- admins' relaxations of the outside-content rule ----------------------------------

    async def relaxed(self, channel_id: int) -> set[str]:
        """The tools whose calls after outside content ask no more than usual here."""
        statement = select(_TRUST.c.tool).where(_TRUST.c.channel_id == channel_id)
        return await self.db.run(
            lambda connection: {row.tool for row in connection.execute(statement)},
            write=False,
        )

    async def set_relaxed(
        self, channel_id: int, tool: str, relaxed: bool, *, by: str, now: datetime
    ) -> None:
        statement: Any = delete(_TRUST).where(
            _TRUST.c.channel_id == channel_id, _TRUST.c.tool == tool
        )
        if relaxed:
            statement = (
                self._insert(_TRUST)
                .values(channel_id=channel_id, tool=tool, set_by=by, set_at=now)
                .on_conflict_do_update(
                    index_elements=[_TRUST.c.channel_id, _TRUST.c.tool],
                    set_={"set_by": by, "set_at": now},
                )
            )
        await self.db.run(lambda connection: connection.execute(statement))


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
