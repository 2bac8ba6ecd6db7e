"""`ObservedStore`: group messages not addressed to Parley, kept opt-in.

With `PARLEY_GROUP_CONTEXT_MESSAGES` at N > 0 each group keeps its last N such messages
(per forum topic), none older than `PARLEY_GROUP_CONTEXT_HOURS`: a message is stored once
(a re-delivered update is ignored) and, in the same transaction, the group's messages past
the last N go. The leader prunes by age; `/forget context` erases a chat's; the console's
erase of a user erases theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database
from bot.storage.models import ObservedMessage

_OBSERVED: Table = ObservedMessage.__table__  # type: ignore[attr-defined]
TEXT_CHARS = 4000  # of one observed message
AUTHOR_CHARS = 255


@dataclass(frozen=True, slots=True)
class Observed:
    author: str
    author_id: str
    text: str
    observed_at: datetime


class ObservedStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._insert = sqlite.insert if database.is_sqlite else postgresql.insert

    async def observe(
        self,
        *,
        platform: str,
        chat_id: str,
        thread_key: str,
        message_id: str,
        author: str,
        author_id: str,
        text: str,
        at: datetime,
        keep: int,
    ) -> None:
        """Keep one message (once), and only the chat's last `keep` in its topic."""
        row = {
            "platform": platform,
            "chat_id": chat_id,
            "thread_key": thread_key,
            "message_id": message_id,
            "author": author[:AUTHOR_CHARS],
            "author_id": author_id,
            "text": text[:TEXT_CHARS],
            "observed_at": at,
        }
        c = _OBSERVED.c
        place = (c.platform == platform, c.chat_id == chat_id, c.thread_key == thread_key)

        def work(connection: Connection) -> None:
            connection.execute(self._insert(_OBSERVED).values(**row).on_conflict_do_nothing())
            newest = select(c.id).where(*place).order_by(c.id.desc()).limit(keep).subquery()
            connection.execute(delete(_OBSERVED).where(*place, c.id.not_in(select(newest.c.id))))

        await self.db.run(work)

    async def recent(
        self, platform: str, chat_id: str, thread_key: str, *, since: datetime, limit: int
    ) -> list[Observed]:
        """The chat's (topic's) last `limit` messages observed after `since`, oldest first."""
        c = _OBSERVED.c
        query = (
            select(c.author, c.author_id, c.text, c.observed_at)
            .where(
                c.platform == platform,
                c.chat_id == chat_id,
                c.thread_key == thread_key,
                c.observed_at >= since,
            )
            .order_by(c.id.desc())
            .limit(limit)
        )
        rows = await self.db.run(lambda connection: list(connection.execute(query)), write=False)
        return [Observed(r.author, r.author_id, r.text, r.observed_at) for r in reversed(rows)]

    async def forget_chat(self, platform: str, chat_id: str) -> int:
        """Erase every message observed in a chat (all its topics); how many."""
        c = _OBSERVED.c
        statement = delete(_OBSERVED).where(c.platform == platform, c.chat_id == chat_id)
        return int(await self.db.run(lambda connection: connection.execute(statement).rowcount))

    async def prune(self, before: datetime) -> int:
        """Erase what was observed before `before` (the retention); how many."""
        statement = delete(_OBSERVED).where(_OBSERVED.c.observed_at < before)
        return int(await self.db.run(lambda connection: connection.execute(statement).rowcount))
