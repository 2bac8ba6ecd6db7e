"""`LeaseStore`: named leases with an expiry, the SQL behind bot/ops/leader.py.

Taking or renewing is one statement (an upsert that only wins when the lease is free,
expired or already ours), so two replicas can never both hold it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database
from bot.storage.models import Lease

_LEASES = Lease.__table__  # type: ignore[attr-defined]


def _take(dialect: type[sqlite.Insert] | type[postgresql.Insert]) -> Any:
    statement = dialect(_LEASES).values(
        name=bindparam("name"), holder=bindparam("holder"), expires_at=bindparam("expires_at")
    )
    return statement.on_conflict_do_update(
        index_elements=[_LEASES.c.name],
        set_={"holder": statement.excluded.holder, "expires_at": statement.excluded.expires_at},
        where=(_LEASES.c.holder == bindparam("holder")) | (_LEASES.c.expires_at < bindparam("now")),
    ).returning(_LEASES.c.holder)


_TAKE_SQLITE = _take(sqlite.Insert)
_TAKE_POSTGRES = _take(postgresql.Insert)
_RELEASE = delete(_LEASES).where(
    _LEASES.c.name == bindparam("name"), _LEASES.c.holder == bindparam("holder")
)


class LeaseStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._take = _TAKE_SQLITE if database.is_sqlite else _TAKE_POSTGRES

    async def take(self, name: str, holder: str, *, now: datetime, until: datetime) -> bool:
        """Take lease `name` for `holder` until `until` if it is free, expired at `now` or
        already `holder`'s; whether `holder` holds it now."""
        values = {"name": name, "holder": holder, "expires_at": until, "now": now}

        def work(connection: Connection) -> bool:
            row = connection.execute(self._take, values).first()
            return row is not None and row[0] == holder

        return await self.db.run(work)

    async def release(self, name: str, holder: str) -> None:
        """Give lease `name` up if `holder` holds it."""
        values = {"name": name, "holder": holder}
        await self.db.run(lambda connection: connection.execute(_RELEASE, values))
