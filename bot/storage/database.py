"""The database handle: async SQLAlchemy engine, SQLite tuning, and transactions.

SQLite allows one writer at a time. Parley gives it exactly one: writes go through a
separate engine with a single pooled connection that starts every transaction with
`BEGIN IMMEDIATE`, so concurrent turns queue for the write lock in Python instead of
failing with SQLITE_BUSY when a read transaction tries to upgrade (see PROTOCOLS.md E).
Reads use a normal pool and never block the writer (WAL). On PostgreSQL both roles
share one engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import ConfigError

log = logging.getLogger(__name__)

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def to_async_url(url: str) -> URL:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; explicit drivers are kept."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL: not a database URL ({exc})") from None
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


class Database:
    """Owns the engines; `read()` and `write()` hand out sessions."""

    def __init__(self, url: str, *, sqlite_busy_timeout_ms: int = 5000, echo: bool = False) -> None:
        self.url = to_async_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ConfigError("DATABASE_URL: in-memory SQLite is not supported; name a file")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"timeout": sqlite_busy_timeout_ms / 1000}
            self.engine = create_async_engine(self.url, echo=echo, connect_args=connect_args)
            self.writer = create_async_engine(
                self.url,
                echo=echo,
                connect_args=connect_args,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
            )
            _tune_sqlite(self.engine, sqlite_busy_timeout_ms, begin="BEGIN")
            _tune_sqlite(self.writer, sqlite_busy_timeout_ms, begin="BEGIN IMMEDIATE")
        else:
            self.engine = create_async_engine(self.url, echo=echo, pool_pre_ping=True)
            self.writer = self.engine
        self._locks: AsyncEngine | None = None

    def lock_engine(self) -> AsyncEngine:
        """PostgreSQL: a pool of its own for connections that hold a lock for a while
        (a turn's advisory lock), so they never starve ordinary queries."""
        if self._locks is None:
            self._locks = create_async_engine(
                self.url, pool_size=5, max_overflow=45, pool_timeout=60, pool_pre_ping=True
            )
        return self._locks

    @classmethod
    def from_settings(cls, settings: Any) -> Database:
        return cls(
            settings.url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms, echo=settings.echo
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed as one transaction when the block ends."""
        async with AsyncSession(self.writer, expire_on_commit=False) as session, session.begin():
            yield session

    async def aclose(self) -> None:
        if self._locks is not None:
            await self._locks.dispose()
            self._locks = None
        await self.engine.dispose()
        if self.writer is not self.engine:
            await self.writer.dispose()


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int, *, begin: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours (IMMEDIATE for writes).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)
