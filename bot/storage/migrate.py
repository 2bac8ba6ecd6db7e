"""Bring a database to the newest schema with Alembic, from async code.

Alembic's commands are synchronous; the cookbook's connection-sharing recipe runs them
on an async engine's connection through `run_sync`, so one code path serves SQLite
(aiosqlite) and PostgreSQL (asyncpg) alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.database import to_async_url

MIGRATIONS = Path(__file__).parent / "migrations"
# Replicas starting together on one PostgreSQL database migrate one after the other.
MIGRATION_LOCK = 0x7061726C6579  # "parley"

log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "sqlalchemy.url", to_async_url(url).render_as_string(hide_password=False)
    )
    return config


async def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (creating the SQLite file if needed)."""
    async_url = to_async_url(url)
    _ensure_sqlite_directory(async_url)
    config = alembic_config(url)
    engine = create_async_engine(async_url)
    try:
        async with engine.begin() as connection:
            if async_url.get_backend_name() == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    """The migration the database at `url` is at (None: never migrated). Never creates
    it; raises whatever the driver raises when it cannot connect."""
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


def head_revision(url: str) -> str | None:
    """The newest migration this version of Parley ships."""
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _ensure_sqlite_directory(url: URL) -> None:
    # Runs once at start-up, before anything else touches the database: blocking is fine.
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
