"""Bring a database to the newest schema with Alembic, from async code.

Alembic's commands are synchronous; the cookbook's connection-sharing recipe runs them
on an async engine's connection through `run_sync`, so one code path serves SQLite
(aiosqlite) and PostgreSQL (asyncpg) alike.

Alembic (with Mako and Pygments behind it) is imported only when there is something to
do: a database already at the newest revision this version ships, the usual restart, is
recognised by reading `alembic_version` and the revision ids of the migration files, so
a running bot never holds Alembic in memory for nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.database import to_async_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Replicas starting together on one PostgreSQL database migrate one after the other.
MIGRATION_LOCK = 0x7061726C6579  # "parley"

log = logging.getLogger(__name__)


# `revision: str = "0008"` and `down_revision: str | None = "0007"` in each migration file.
_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

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
    engine = create_async_engine(async_url)
    try:
        async with engine.begin() as connection:
            if async_url.get_backend_name() == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            if revision == "head" and await connection.run_sync(_at_shipped_head):
                return
            await connection.run_sync(_upgrade, alembic_config(url), revision)
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
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def shipped_heads() -> set[str]:
    """The revisions no shipped migration builds on, read from the files' text (one,
    unless the chain is broken; then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for field, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            if field == "revision":
                revisions.add(value)
            elif value:
                parents.add(value)
    return revisions - parents


def _at_shipped_head(connection: Connection) -> bool:
    """True when `alembic_version` holds exactly the one head this version ships."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    stored = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
    heads = shipped_heads()
    return len(heads) == 1 and stored == heads


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _ensure_sqlite_directory(url: URL) -> None:
    # Runs once at start-up, before anything else touches the database: blocking is fine.
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    from alembic import command

    config.attributes["connection"] = connection
    command.upgrade(config, revision)
