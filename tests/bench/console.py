"""Console benchmark: each /admin page's render time over HTTP on a large database.

Fills a fresh SQLite database (migrated by Alembic, then bulk-inserted with executemany)
with N channels, 5 conversations per channel, M messages spread over them, one usage row
per 4 messages over the last 60 days, 10,000 audit entries and 10,000 pending reminders;
starts a real Parley web server with the console on, signs in, and requests each page
R times (httpx, keep-alive). Prints p50 / p95 / max per page, server side included.

Usage: python -P tests/bench/console.py [--channels 10000] [--messages 1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import Application
from bot.config import Settings
from bot.storage import migrate

PASSWORD = "bench-password"
FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def fill(path: Path, channels: int, messages: int) -> dict[str, int]:
    """Bulk-insert the data set straight through sqlite3 (fast), after the migrations."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rng = random.Random(7)
    users = max(1, channels // 5)
    conversations = channels * 5
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    stamp = (now - timedelta(days=90)).strftime(FORMAT)
    db.executemany(
        "INSERT INTO users (id, platform, platform_user_id, display_name, timezone, created_at)"
        " VALUES (?, 'slack', ?, ?, NULL, ?)",
        ((i, f"U{i:07d}", f"User {i}", stamp) for i in range(1, users + 1)),
    )
    db.executemany(
        "INSERT INTO channels (id, platform, platform_chat_id, kind, title, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            (i, "slack" if i % 2 else "telegram", f"C{i:07d}", "group", f"room-{i}", stamp)
            for i in range(1, channels + 1)
        ),
    )
    db.executemany(
        "INSERT INTO conversations (id, user_id, channel_id, thread_key, created_at, closed_at)"
        " VALUES (?, ?, ?, ?, ?, NULL)",
        (
            (i, rng.randint(1, users), (i - 1) // 5 + 1, f"{i}.000100", stamp)
            for i in range(1, conversations + 1)
        ),
    )
    body = "A typical message of moderate length, about as long as people write. " * 2

    def message_rows() -> object:
        for i in range(1, messages + 1):
            conversation = (i - 1) % conversations + 1
            created = (now - timedelta(seconds=(messages - i) * 5)).strftime(FORMAT)
            role = "user" if i % 2 else "assistant"
            yield (i, conversation, role, body, None, "", "", 0, 30, created)

    db.executemany(
        "INSERT INTO messages (id, conversation_id, role, content, tool_calls, tool_call_id,"
        " name, is_error, tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        message_rows(),  # type: ignore[arg-type]
    )
    usage_rows = messages // 4
    db.executemany(
        "INSERT INTO usage (id, user_id, channel_id, conversation_id, model, prompt_tokens,"
        " completion_tokens, created_at) VALUES (?, ?, ?, NULL, 'm', ?, ?, ?)",
        (
            (
                i,
                rng.randint(1, users),
                rng.randint(1, channels),
                rng.randint(200, 2000),
                rng.randint(20, 400),
                (now - timedelta(seconds=rng.randint(0, 60 * 86400))).strftime(FORMAT),
            )
            for i in range(1, usage_rows + 1)
        ),
    )
    db.executemany(
        "INSERT INTO audit_log (id, created_at, actor, action, place, surface, allowed, details)"
        " VALUES (?, ?, 'slack:U0000001', 'tool.toggle', ?, 'slack', 1, ?)",
        (
            (i, (now - timedelta(minutes=i)).strftime(FORMAT), f"slack:C{i:07d}", "{}")
            for i in range(1, 10_001)
        ),
    )
    db.executemany(
        "INSERT INTO reminders (id, user_id, channel_id, thread_key, kind, text, due_at, timezone,"
        " recurrence, cron, status, attempts, last_error, retry_at, delivered_at, deliveries,"
        " created_at) VALUES (?, ?, ?, '', 'message', 'water the plants', ?, 'UTC', 'none', '',"
        " 'pending', 0, '', NULL, NULL, 0, ?)",
        (
            (
                i,
                rng.randint(1, users),
                rng.randint(1, channels),
                (now + timedelta(days=30, minutes=i)).strftime(FORMAT),
                stamp,
            )
            for i in range(1, 10_001)
        ),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return {
        "users": users,
        "channels": channels,
        "conversations": conversations,
        "messages": messages,
        "usage rows": usage_rows,
    }


async def measure(url: str, channels: int, conversations: int, repeat: int) -> None:
    settings = Settings.load(
        env_file=None,
        llm={"api_key": "sk-unused", "base_url": "http://127.0.0.1:9/v1"},
        database={"url": url},
        http={"port": 0},
        admin={"console_password": PASSWORD},
    )
    app = Application(settings, tools=())
    stop = asyncio.Event()
    task = asyncio.create_task(app.serve(stop))
    while app.web is None or not app.scheduler.running:  # noqa: ASYNC110 - another task's state
        await asyncio.sleep(0.01)
    mid_channel = channels // 2
    pages = {
        "channels (page 1)": "/admin/channels",
        "channels (page 100)": "/admin/channels?page=100",
        "channel detail": f"/admin/channels/{mid_channel}",
        "users": "/admin/users",
        "conversations": "/admin/conversations",
        "conversations of a channel": f"/admin/conversations?channel={mid_channel}",
        "conversation (messages)": f"/admin/conversations/{conversations // 2}",
        "reminders": "/admin/reminders",
        "audit log": "/admin/audit",
        "usage chart (30 days, fresh)": "/admin/usage?fresh=1",
        "usage chart (cached)": "/admin/usage",
    }
    base = f"http://127.0.0.1:{app.web.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            login = await client.get("/admin/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
            assert csrf is not None
            signed = await client.post(
                "/admin/login", data={"csrf": csrf.group(1), "password": PASSWORD}
            )
            assert signed.status_code == 303, signed.status_code
            print(f"{'page':<30} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'KiB':>6}")
            for name, path in pages.items():
                times = []
                size = 0
                for _ in range(repeat + 2):
                    started = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                    size = len(response.content)
                times = sorted(times[2:])  # the first two warm caches
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                print(
                    f"{name:<30} {statistics.median(times):8.1f} {p95:8.1f} "
                    f"{times[-1]:8.1f} {size / 1024:6.1f}"
                )
    finally:
        stop.set()
        await task
        await app.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        await migrate(url)
        started = time.perf_counter()
        counts = fill(path, args.channels, args.messages)
        print(
            ", ".join(f"{v:,} {k}" for k, v in counts.items())
            + f"; filled in {time.perf_counter() - started:.1f} s,"
            f" {path.stat().st_size / 2**20:.0f} MiB"
        )
        await measure(url, args.channels, counts["conversations"], args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
