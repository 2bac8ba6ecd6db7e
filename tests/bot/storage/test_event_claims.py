"""Event claims: keyed by the receiving bot, pruned after the retention period, and the
migration that re-keys them (0007) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import ConversationStore, Database, migrate
from bot.storage.database import to_async_url
from bot.storage.migrate import alembic_config
from tests.apps import AppFactory
from tests.databases import database_url_for, sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url_for(request, tmp_path) as url:
        yield url


async def sql(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def downgrade(url: str, revision: str) -> None:
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def claims(url: str) -> list[tuple[object, ...]]:
    return await sql(url, "SELECT platform, bot, event_id FROM processed_events ORDER BY 1, 2, 3")


async def test_migration_keeps_old_claims_and_rekeys_by_bot(database_url: str) -> None:
    await migrate(database_url, "0006")
    await sql(
        database_url,
        "INSERT INTO processed_events (platform, event_id, created_at) VALUES ('telegram', '5', "
        ":at), ('slack', 'T1:Ev1', :at)",
        at=datetime.now(UTC),
    )
    await migrate(database_url)
    assert await claims(database_url) == [("slack", "", "T1:Ev1"), ("telegram", "", "5")]

    database = Database(database_url)
    store = ConversationStore(database)
    try:
        assert await store.claim_event("telegram", "", "5") is False  # the old claim holds
        assert await store.claim_event("telegram", "7000001", "5") is True
        assert await store.claim_event("telegram", "7000002", "5") is True  # another bot
        assert await store.claim_event("telegram", "7000002", "5") is False
    finally:
        await database.aclose()

    # Down and up again: one claim per (platform, event id) survives the old key.
    await downgrade(database_url, "0006")
    rows = await sql(database_url, "SELECT platform, event_id FROM processed_events ORDER BY 1")
    assert rows == [("slack", "T1:Ev1"), ("telegram", "5")]
    await migrate(database_url)
    assert await claims(database_url) == [("slack", "", "T1:Ev1"), ("telegram", "", "5")]


async def test_claims_older_than_the_cutoff_are_pruned_in_batches(database_url: str) -> None:
    await migrate(database_url)
    now = datetime.now(UTC)
    for number in range(5):
        await sql(
            database_url,
            "INSERT INTO processed_events (platform, bot, event_id, created_at) "
            "VALUES ('telegram', '1', :id, :at)",
            id=f"old-{number}",
            at=now - timedelta(hours=100),
        )
    database = Database(database_url)
    store = ConversationStore(database)
    try:
        assert await store.claim_event("telegram", "1", "new") is True
        assert await store.prune_events(now - timedelta(hours=72), batch=2) == 5
        assert await claims(database_url) == [("telegram", "1", "new")]
        assert await store.prune_events(now - timedelta(hours=72)) == 0
        # A pruned id is new again (what retention means), a kept one is not.
        assert await store.claim_event("telegram", "1", "old-0") is True
        assert await store.claim_event("telegram", "1", "new") is False
    finally:
        await database.aclose()


async def test_the_scheduler_leader_prunes_claims_past_the_retention_period(
    make_app: AppFactory, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    app = await make_app(
        database_url=url,
        ops={"lease_renew_seconds": 0.05, "event_retention_hours": 24},
    )
    assert await app.store.claim_event("telegram", "1", "recent") is True
    await sql(
        url,
        "INSERT INTO processed_events (platform, bot, event_id, created_at) "
        "VALUES ('telegram', '1', 'stale', :at)",
        at=datetime.now(UTC) - timedelta(hours=25),
    )
    await app.leadership.start()
    try:
        deadline = time.monotonic() + 10
        while await sql(url, "SELECT 1 FROM processed_events WHERE event_id = 'stale'"):
            assert time.monotonic() < deadline, "the stale claim was never pruned"
            await asyncio.sleep(0.02)
        assert await claims(url) == [("telegram", "1", "recent")]
    finally:
        await app.leadership.stop()
