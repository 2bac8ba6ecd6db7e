"""The two queries that run all the time on a large database: with their indexes and
without, in one run.

1. The scheduler's pick-up of reminders created since its last look (every few seconds),
   among `--rows` pending reminders created earlier.
2. The leader's hourly prune of finished turns, among `--rows` recent finished turns
   (none old enough to go, so each run does the same work).

Each query runs through its store (`ReminderStore.pending`, `TurnStore.prune`) on a
migrated database, then again after its index is dropped; the figures are medians of
`--repeat` runs and their ratio. SQLite always; PostgreSQL too when PARLEY_TEST_POSTGRES
names a server (a fresh database is made and dropped there).

Usage: python tests/bench/storage_scans.py [--rows 60000] [--repeat 21]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text
from sqlalchemy.engine import Connection

from bot.storage import migrate
from bot.storage.database import Database
from bot.storage.models import Channel, Reminder, Turn, User
from bot.storage.reminders import ReminderStore
from bot.storage.turns import TurnStore
from tests.databases import fresh_postgres_database

INDEXES = {
    "pick-up of new reminders": ("ix_reminders_status_created_at", "reminders"),
    "prune of finished turns": ("ix_turns_state_updated_at", "turns"),
}


async def fill(database: Database, rows: int) -> None:
    async with database.write() as session:
        session.add(User(id=1, platform="bench", platform_user_id="u", display_name="U"))
        session.add(Channel(id=1, platform="bench", platform_chat_id="c", kind="dm"))
    earlier = datetime.now(UTC) - timedelta(days=1)
    now = datetime.now(UTC)

    def insert(connection: Connection) -> None:
        connection.execute(
            Reminder.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "user_id": 1,
                    "channel_id": 1,
                    "kind": "message",
                    "text": "stand-up",
                    "due_at": earlier + timedelta(days=2),
                    "timezone": "UTC",
                    "created_at": earlier,
                }
                for _ in range(rows)
            ],
        )
        connection.execute(
            Turn.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "platform": "bench",
                    "event_id": str(number),
                    "holder": "gone",
                    "state": "done",
                    "chat_id": "c",
                    "chat_kind": "dm",
                    "user_id": "u",
                    "text": "what is the weather?",
                    "reply": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for number in range(rows)
            ],
        )

    await database.run(insert)


async def median_ms(work: Callable[[], Awaitable[object]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(url: str, label: str, rows: int, repeat: int) -> None:
    await migrate(url)
    database = Database(url)
    try:
        await fill(database, rows)
        if not database.is_sqlite:
            await database.run(lambda c: c.exec_driver_sql("ANALYZE"))
        reminders, turns = ReminderStore(database), TurnStore(database)
        since = datetime.now(UTC) - timedelta(seconds=5)
        queries = {
            "pick-up of new reminders": lambda: reminders.pending(created_since=since),
            "prune of finished turns": lambda: turns.prune(datetime.now(UTC) - timedelta(hours=72)),
        }
        with_index = {name: await median_ms(query, repeat) for name, query in queries.items()}
        for index, _table in INDEXES.values():
            await database.run(lambda c, index=index: c.execute(text(f"DROP INDEX {index}")))
        if not database.is_sqlite:
            await database.run(lambda c: c.exec_driver_sql("ANALYZE"))
        without = {name: await median_ms(query, repeat) for name, query in queries.items()}
    finally:
        await database.aclose()
    for name in queries:
        print(
            f"{label:10} {name:26} with index {with_index[name]:7.2f} ms   "
            f"without {without[name]:7.2f} ms   ratio {without[name] / with_index[name]:6.1f}x"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    print(f"{args.rows} pending reminders and {args.rows} finished turns; medians of {args.repeat}")
    with tempfile.TemporaryDirectory() as directory:
        await measure(f"sqlite:///{directory}/bench.db", "SQLite", args.rows, args.repeat)
    if server := os.environ.get("PARLEY_TEST_POSTGRES"):
        async with fresh_postgres_database(server) as url:
            await measure(url, "PostgreSQL", args.rows, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
