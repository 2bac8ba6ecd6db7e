"""Scheduler benchmark: N reminders due within a window; how late do they fire?

Writes N pending reminders into a fresh SQLite database (one bulk insert), then starts
a real `ReminderScheduler` (APScheduler AsyncIOScheduler, in-memory jobs rebuilt from
the table, the same path as a restart) with a Messenger that records the moment each
text arrives. Due times are spread evenly over the window, starting a few seconds after
the scheduler is up. Each delivery is the production path: claim transaction, send,
settle transaction.

    lateness = time the Messenger received it - due_at

It checks that every reminder arrived exactly once and that every row is `delivered`.

Usage: python tests/bench/scheduler.py [--reminders 10000] [--window 20] [--lead 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import func, insert
from sqlmodel import select

from bot.config import ReminderSettings
from bot.domain import ChatKind, ChatRef, UserRef
from bot.reminders import ReminderScheduler
from bot.storage import ConversationStore, Database, migrate
from bot.storage.models import Reminder


class TimingMessenger:
    platform = "bench"

    def __init__(self, expected: int) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.expected = expected
        self.all_arrived = asyncio.Event()

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        self.arrivals.append((text.rpartition(": ")[2], time.time()))
        if len(self.arrivals) >= self.expected:
            self.all_arrived.set()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(count: int, window: float, lead: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        await migrate(url)
        database = Database(url)
        store = ConversationStore(database)
        user = UserRef("bench", "u1", "Bench")
        user_id, channel_id = await store.ids_of(user, ChatRef("bench", "c1", ChatKind.DM))
        start = datetime.now(UTC) + timedelta(seconds=lead)
        due = {i: start + timedelta(seconds=window * i / count) for i in range(count)}
        rows = [
            {
                "user_id": user_id,
                "channel_id": channel_id,
                "thread_key": "",
                "kind": "message",
                "text": f"r{i}",
                "due_at": due[i],
                "timezone": "UTC",
                "recurrence": "none",
                "cron": "",
                "status": "pending",
                "attempts": 0,
                "last_error": "",
                "deliveries": 0,
                "created_at": datetime.now(UTC),
            }
            for i in range(count)
        ]
        async with database.write() as session:
            await session.exec(insert(Reminder.__table__), params=rows)  # type: ignore[attr-defined]
        messenger = TimingMessenger(count)
        scheduler = ReminderScheduler(
            database, store, ReminderSettings(), {messenger.platform: messenger}.get
        )
        began = time.perf_counter()
        cpu_began = time.process_time()
        loaded = await scheduler.start()
        load_seconds = time.perf_counter() - began
        try:
            await asyncio.wait_for(messenger.all_arrived.wait(), timeout=lead + window + 30)
        except TimeoutError:
            print("timed out waiting for every reminder")
        await asyncio.sleep(1.0)  # anything doubled would arrive now
        cpu = time.process_time() - cpu_began
        await scheduler.stop()
        async with database.read() as session:
            statuses = dict(
                (
                    await session.exec(
                        select(Reminder.status, func.count()).group_by(Reminder.status)
                    )
                ).all()
            )
        await database.aclose()

    counts = Counter(text for text, _ in messenger.arrivals)
    lateness = [at - due[int(text[1:])].timestamp() for text, at in messenger.arrivals]
    lost = count - len(counts)
    doubled = sum(1 for n in counts.values() if n > 1)
    print(f"reminders: {count} due within {window:g} s ({count / window:.0f}/s), lead {lead:g} s")
    print(f"jobs rebuilt from the table at start: {loaded} in {load_seconds * 1000:.0f} ms")
    print(f"delivered: {len(messenger.arrivals)}  lost: {lost}  doubled: {doubled}")
    print(f"rows by status: {statuses}")
    if lateness:
        p50, p90, p99 = (1000 * percentile(lateness, q) for q in (0.5, 0.9, 0.99))
        worst, mean = 1000 * max(lateness), 1000 * statistics.fmean(lateness)
        print(
            f"lateness: p50 {p50:.1f} ms  p90 {p90:.1f} ms  p99 {p99:.1f} ms  "
            f"max {worst:.1f} ms  mean {mean:.1f} ms"
        )
    print(f"CPU: {cpu:.1f} s for the run ({1000 * cpu / max(count, 1):.2f} ms per reminder)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--lead", type=float, default=5.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.reminders, arguments.window, arguments.lead))
