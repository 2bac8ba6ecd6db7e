"""The current date and time, anywhere."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from pydantic import BaseModel, Field

from bot.domain import ToolContext
from bot.toolkit import tool


class CurrentTimeParams(BaseModel):
    timezone: str | None = Field(
        None,
        description="IANA timezone name such as 'Asia/Shanghai' or 'America/New_York'. "
        "Leave empty for the user's own timezone.",
    )


@tool()
async def get_current_time(params: CurrentTimeParams, ctx: ToolContext) -> dict[str, str]:
    """Get the current date, time and weekday in a timezone (the user's own by default)."""
    name = params.timezone or ctx.timezone
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name like 'Europe/Paris'"
        ) from None
    now = ctx.now.astimezone(zone) if ctx.now.tzinfo else datetime.now(zone)
    return {
        "timezone": name,
        "iso": now.isoformat(timespec="seconds"),
        "weekday": now.strftime("%A"),
        "utc_offset": now.strftime("%z"),
    }
