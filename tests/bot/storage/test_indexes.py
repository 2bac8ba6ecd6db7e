"""The queries that run all the time find their rows through an index, not a table scan.

Each store call below runs as Parley runs it; its statements are captured as sent to the
database and explained there (SQLite's query planner, PostgreSQL's with sequential scans
discouraged, so the plan says whether an index *can* serve the query at all).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from bot.storage.database import Database
from bot.storage.reminders import ReminderStore
from bot.storage.turns import TurnStore
from tests.databases import migrated_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(request, tmp_path) as database:
        yield database


@contextmanager
def statements_on(table: str) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent to any engine while inside that names `table`."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if f" {table}" in statement and not statement.startswith(("EXPLAIN", "SET")):
            seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def plans(database: Database, statements: list[tuple[str, Any]]) -> list[str]:
    def explain(connection: Connection) -> list[str]:
        found = []
        for statement, parameters in statements:
            if database.is_sqlite:
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                found.append("\n".join(str(row[-1]) for row in rows))
            else:
                connection.execute(text("SET LOCAL enable_seqscan = off"))
                rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                found.append("\n".join(str(row[0]) for row in rows))
        return found

    return await database.run(explain, write=False)


async def explained(
    database: Database, table: str, call: Callable[[], Awaitable[object]]
) -> list[str]:
    with statements_on(table) as seen:
        await call()
    assert seen, f"no statement on {table} was captured"
    return await plans(database, seen)


async def test_the_scheduler_finds_new_reminders_by_index(database: Database) -> None:
    store = ReminderStore(database)
    since = datetime.now(UTC) - timedelta(seconds=5)

    [plan] = await explained(database, "reminders", lambda: store.pending(created_since=since))

    assert "ix_reminders_status_created_at" in plan, plan


async def test_the_hourly_prune_finds_finished_turns_by_index(database: Database) -> None:
    store = TurnStore(database)
    before = datetime.now(UTC) - timedelta(hours=72)

    found = await explained(database, "turns", lambda: store.prune(before))

    assert found and all("ix_turns_state_updated_at" in plan for plan in found), found
