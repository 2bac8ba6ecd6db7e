"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import Database, migrate


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'parley.db'}"


@asynccontextmanager
async def fresh_postgres_database(server_url: str) -> AsyncIterator[str]:
    """Create a uniquely named database on the server, yield its URL, drop it after.

    Every test gets a database of its own (a random name, never the server's `test`
    database itself), so tests on parallel workers cannot see each other's rows."""
    # The worker's name (gw0, gw1 under pytest-xdist) tells whose a leftover was.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"parley_test_{worker}_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(server_url).set(drivername="postgresql+asyncpg")
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            # Dropped after a failing test too: left behind, each would hold its files
            # and, with connections still open, count against the server's limit.
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def database_url_for(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a throw-away database of the kind a fixture's parameter names: "sqlite",
    or PostgreSQL ("postgres"/"postgresql"; skipped without PARLEY_TEST_POSTGRES)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@asynccontextmanager
async def migrated_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    """`database_url_for`'s database, migrated, as a `Database` closed afterwards."""
    async with database_url_for(request, tmp_path) as url:
        await migrate(url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.aclose()
