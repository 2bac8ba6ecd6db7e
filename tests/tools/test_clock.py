from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.domain import ChatRef, ToolCall, ToolContext, UserRef
from tools.clock import get_current_time

NOON_UTC = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTEXT = ToolContext(UserRef("t", "1"), ChatRef("t", "c"), "Europe/Berlin", NOON_UTC)


async def run(arguments: dict[str, object]) -> tuple[bool, str]:
    result = await get_current_time.run(ToolCall("c1", "get_current_time", arguments), CONTEXT, 5)
    return result.is_error, result.content


async def test_defaults_to_the_users_timezone() -> None:
    is_error, content = await run({"timezone": None})
    assert not is_error
    assert json.loads(content) == {
        "timezone": "Europe/Berlin",
        "iso": "2026-03-01T13:00:00+01:00",
        "weekday": "Sunday",
        "utc_offset": "+0100",
    }


async def test_an_explicit_timezone_wins() -> None:
    _, content = await run({"timezone": "Asia/Shanghai"})
    assert json.loads(content)["iso"] == "2026-03-01T20:00:00+08:00"


async def test_an_unknown_timezone_is_an_error_the_model_can_read() -> None:
    is_error, content = await run({"timezone": "Mars/Olympus"})
    assert is_error
    assert "unknown timezone 'Mars/Olympus'" in content
