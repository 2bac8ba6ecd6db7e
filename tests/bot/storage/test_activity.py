"""ActivityStore on SQLite and PostgreSQL: turns by day, samples, failures, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from bot.storage import Database, migrate
from bot.storage.activity import ActivityStore
from bot.storage.models import utcnow
from tests.databases import fresh_postgres_database, sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
async def activity(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[ActivityStore]:
    async def open_store(url: str) -> AsyncIterator[ActivityStore]:
        await migrate(url)
        database = Database(url)
        try:
            yield ActivityStore(database)
        finally:
            await database.aclose()

    if request.param == "sqlite":
        async for store in open_store(sqlite_url(tmp_path)):
            yield store
        return
    async with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        async for store in open_store(url):
            yield store


def turn(days_ago: float, outcome: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "turn_id": extra.pop("turn_id", f"t{days_ago}"),
        "finished_at": utcnow() - timedelta(days=days_ago),
        "platform": extra.pop("platform", "slack"),
        "outcome": outcome,
        "seconds": extra.pop("seconds", 1.0),
        "vendor": "openai",
        "models": extra.pop("models", {"gpt": [1, 0]}),
        "tools": extra.pop("tools", {}),
        "error": "" if outcome == "ok" else "the model failed (gpt)",
    }


async def test_turns_are_counted_by_day_and_old_ones_forgotten(activity: ActivityStore) -> None:
    await activity.record(
        [
            turn(0),
            turn(0, "error", turn_id="bad1"),
            turn(2),
            turn(2),
            turn(200),  # past the retention
        ],
        keep_days=90,
    )
    today = utcnow().date()
    per_day = await activity.turns_per_day(days=14)
    assert per_day == {
        today.isoformat(): (1, 1),
        (today - timedelta(days=2)).isoformat(): (2, 0),
    }
    [failure] = await activity.newest_failures()
    assert (failure.turn_id, failure.platform) == ("bad1", "slack")
    assert failure.error == "the model failed (gpt)"


async def test_samples_carry_latency_models_and_tools(activity: ActivityStore) -> None:
    await activity.record(
        [
            turn(0.1, seconds=2.5, tools={"get_weather": [2, 1]}, platform="telegram"),
            turn(3, seconds=0.5),
            turn(9, seconds=9.0),
        ],
        keep_days=90,
    )
    samples = await activity.samples(since=utcnow() - timedelta(days=7))
    assert sorted(s.seconds for s in samples) == [0.5, 2.5]
    assert {"get_weather": [2, 1]} in [s.tools for s in samples]
    last = await activity.last_turn_per_platform()
    assert set(last) == {"slack", "telegram"} and last["telegram"].tzinfo is not None
