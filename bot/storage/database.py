"""The database handle: engines, SQLite tuning, and transactions.

Two ways in. `run(work)` runs a plain function over a SQLAlchemy `Connection` as one
transaction: the hot path (every turn's history and writes) uses it. On SQLite the
function runs on a thread of the database's own, as one hop however many statements it
makes; through an async driver each statement would be a hop to the driver's thread and
back through the event loop, which cost a turn about 10 ms of CPU (docs/benchmarks.md).
On PostgreSQL it runs on the asyncpg connection through SQLAlchemy's `run_sync`.
`read()` and `write()` hand out async ORM sessions for the code where the convenience
matters more than the microseconds (admin console, scheduler).

SQLite allows one writer at a time. Writes start with `BEGIN IMMEDIATE` on a pool of a
single connection per engine, so concurrent turns queue for the write lock (in the write
thread's queue, or the async writer's pool) instead of failing with SQLITE_BUSY when a
read transaction tries to upgrade (see PROTOCOLS.md E); the busy timeout covers the two
writers meeting. Reads never block the writer (WAL). On PostgreSQL one engine serves all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import ConfigError

log = logging.getLogger(__name__)

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
# Reads of concurrent turns overlap (WAL); more threads would only contend for the GIL.
SQLITE_READ_THREADS = 2

T = TypeVar("T")
_PING = text("SELECT 1")


def to_async_url(url: str) -> URL:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; explicit drivers are kept."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"DATABASE_URL: not a database URL ({exc})") from None
    driver = ASYNC_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


class Database:
    """Owns the engines: `run()` runs units of work; `read()` and `write()` hand out sessions."""

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
            _tune_sqlite(self.engine.sync_engine, sqlite_busy_timeout_ms, begin="BEGIN")
            _tune_sqlite(self.writer.sync_engine, sqlite_busy_timeout_ms, begin="BEGIN IMMEDIATE")
            # The engines of `run()`: the stdlib driver, used only from their own threads.
            sync_url = self.url.set(drivername="sqlite")
            sync_args = {**connect_args, "check_same_thread": False}
            self._sync_writer = create_engine(
                sync_url, echo=echo, connect_args=sync_args, pool_size=1, max_overflow=0
            )
            self._sync_reader = create_engine(
                sync_url,
                echo=echo,
                connect_args=sync_args,
                pool_size=SQLITE_READ_THREADS,
                max_overflow=0,
            )
            _tune_sqlite(self._sync_writer, sqlite_busy_timeout_ms, begin="BEGIN IMMEDIATE")
            _tune_sqlite(self._sync_reader, sqlite_busy_timeout_ms, begin="BEGIN")
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="parley-db-write")
            self._read_threads = ThreadPoolExecutor(
                SQLITE_READ_THREADS, thread_name_prefix="parley-db-read"
            )
        else:
            self.engine = create_async_engine(self.url, echo=echo, pool_pre_ping=True)
            self.writer = self.engine
        self._locks: AsyncEngine | None = None
        self._closed = False

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

    async def run(self, work: Callable[[Connection], T], *, write: bool = True) -> T:
        """`work(connection)` as one transaction, committed when it returns (rolled back
        if it raises). `write=False` promises it only reads: on SQLite it then runs beside
        the writer instead of queueing behind it."""
        if self.is_sqlite:
            engine, thread = (
                (self._sync_writer, self._write_thread)
                if write
                else (self._sync_reader, self._read_threads)
            )
            return await asyncio.get_running_loop().run_in_executor(
                thread, _in_transaction, engine, work
            )
        async with self.writer.begin() as connection:
            return await connection.run_sync(work)

    async def ping(self) -> None:
        """One `SELECT 1`: raises if the database does not answer (for `/readyz`)."""
        async with self.engine.connect() as connection:
            await connection.execute(_PING)

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
        if self.is_sqlite and not self._closed:
            self._closed = True  # closing twice (a restart in tests) is harmless
            loop = asyncio.get_running_loop()
            # Each engine is closed on its own threads, after the work queued before it.
            await loop.run_in_executor(self._write_thread, self._sync_writer.dispose)
            await loop.run_in_executor(self._read_threads, self._sync_reader.dispose)
            self._write_thread.shutdown()
            self._read_threads.shutdown()


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as connection:
        return work(connection)


def _tune_sqlite(sync_engine: Engine, busy_timeout_ms: int, *, begin: str) -> None:
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
