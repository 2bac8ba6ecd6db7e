"""`ConsoleSessionStore`: the console's sessions in the database, seen by every replica.

A session is alive while its row exists, its absolute end (`expires_at`) has not come
and it was used within the idle timeout. Expired rows are deleted at each sign-in, so
the table holds about as many rows as there are live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlmodel import col

from bot.storage.database import Database
from bot.storage.models import ConsoleSession, utcnow


@dataclass(frozen=True, slots=True)
class LiveSession:
    token_hash: str
    csrf: str
    password_tag: str
    seen_at: datetime


class ConsoleSessionStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(
        self,
        *,
        token_hash: str,
        csrf: str,
        password_tag: str,
        client: str,
        lifetime: timedelta,
        idle: timedelta,
    ) -> None:
        now = utcnow()
        async with self.db.write() as session:
            await session.exec(
                delete(ConsoleSession).where(
                    or_(
                        col(ConsoleSession.expires_at) <= now,
                        col(ConsoleSession.seen_at) <= now - idle,
                    )
                )
            )
            session.add(
                ConsoleSession(
                    token_hash=token_hash,
                    csrf=csrf,
                    password_tag=password_tag,
                    client=client[:64],
                    created_at=now,
                    seen_at=now,
                    expires_at=now + lifetime,
                )
            )

    async def find(self, token_hash: str, *, idle: timedelta) -> LiveSession | None:
        """The session if it is alive now, else None."""
        now = utcnow()
        async with self.db.read() as session:
            row = (
                await session.exec(  # type: ignore[call-overload]
                    select(
                        col(ConsoleSession.token_hash),
                        col(ConsoleSession.csrf),
                        col(ConsoleSession.password_tag),
                        col(ConsoleSession.seen_at),
                    ).where(
                        col(ConsoleSession.token_hash) == token_hash,
                        col(ConsoleSession.expires_at) > now,
                        col(ConsoleSession.seen_at) > now - idle,
                    )
                )
            ).first()
        return LiveSession(*row) if row is not None else None

    async def touch(self, token_hash: str) -> None:
        """Mark the session used now (the idle timeout counts from here)."""
        async with self.db.write() as session:
            await session.exec(
                update(ConsoleSession)
                .where(col(ConsoleSession.token_hash) == token_hash)
                .values(seen_at=utcnow())
            )

    async def delete(self, token_hash: str) -> None:
        async with self.db.write() as session:
            await session.exec(
                delete(ConsoleSession).where(col(ConsoleSession.token_hash) == token_hash)
            )
