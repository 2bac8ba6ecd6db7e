"""The Alembic migrations and the SQLModel tables describe the same schema."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (registers the tables)
from bot.storage import migrate
from bot.storage.database import to_async_url
from tests.databases import fresh_postgres_database, sqlite_url


async def schema_drift(url: str) -> list[object]:
    await migrate(url)
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_the_models(tmp_path) -> None:
    assert await schema_drift(sqlite_url(tmp_path)) == []


@pytest.mark.postgres
async def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    async with fresh_postgres_database(postgres_url) as url:
        assert await schema_drift(url) == []


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_one_after_the_other(postgres_url: str) -> None:
    async with fresh_postgres_database(postgres_url) as url:
        await asyncio.gather(*(migrate(url) for _ in range(3)))
        assert await schema_drift(url) == []
