"""Repeat patterns of reminders: crontabs read in the user's timezone, in UTC out.

`next_occurrence` is when a repeating reminder fires next (DST-safe: the pattern is
read in the reminder's own timezone); `shortest_gap` is how often it fires at most,
which the minimum interval of repeating follow-ups is checked against.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import cast

from apscheduler.triggers.cron import CronTrigger


def as_utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    """A 5-field crontab (minute first), or 6 fields with seconds first, in `timezone`."""
    zone = zoneinfo.ZoneInfo(timezone)
    fields = cron.split()
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=zone,
        )
    return CronTrigger.from_crontab(cron, timezone=zone)


def next_occurrence(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first time strictly after `after` that `cron` names, in UTC (DST-safe)."""
    trigger = cron_trigger(cron, timezone)
    start = after.astimezone(zoneinfo.ZoneInfo(timezone)) + timedelta(seconds=1)
    found = trigger.get_next_fire_time(None, start.replace(microsecond=0))
    return None if found is None else as_utc(cast(datetime, found))


def shortest_gap(
    cron: str, timezone: str, first: datetime, enough: float, *, runs: int = 400
) -> float | None:
    """The shortest time in seconds between consecutive runs of `cron` from `first`, over
    its next `runs` runs or two years, whichever ends first; None if it runs at most once.

    A pattern's gaps repeat within its day, and from one day to the next, so a dense
    pattern shows its shortest gap at once ("0,1 9 * * *": a minute); the search stops
    as soon as a gap is shorter than `enough`. Gaps within a day of a clock change are not
    counted: the 23-hour day summer time starts, a time that does not exist that night
    (fired an hour later), or 2:30 coming twice the night it ends (fired twice) are the
    clock's doing, not the pattern's.
    """
    trigger = cron_trigger(cron, timezone)
    zone = zoneinfo.ZoneInfo(timezone)
    found = trigger.get_next_fire_time(None, first.astimezone(zone).replace(microsecond=0))
    if found is None:
        return None
    previous = as_utc(cast(datetime, found))
    horizon = previous + timedelta(days=731)
    shortest: float | None = None
    for _ in range(runs):
        start = (previous + timedelta(seconds=1)).astimezone(zone)
        upcoming = trigger.get_next_fire_time(previous, start)
        if upcoming is None:
            break
        moment = as_utc(cast(datetime, upcoming))
        day = timedelta(days=1)
        before, after = (previous - day).astimezone(zone), (moment + day).astimezone(zone)
        if before.utcoffset() == after.utcoffset():
            gap = (moment - previous).total_seconds()
            shortest = gap if shortest is None else min(shortest, gap)
        if (shortest is not None and shortest < enough) or moment > horizon:
            break
        previous = moment
    return shortest


def duration(seconds: float) -> str:
    """`seconds` in words: "1 minute", "90 minutes", "1 hour", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    if seconds >= 60:
        return f"{round(seconds / 60)} minutes"
    count = round(seconds)
    return f"{count} second{'s' if count != 1 else ''}"
