"""The console's landing page: how the bot is doing, at a glance, without JavaScript.

Turns and failures per day as a stacked bar chart drawn here as SVG (axes with a scale,
dates, titles, a legend, and the same numbers in a table), answer latency percentiles,
model calls by vendor and model, tool calls by tool, reminders due and failed, the
platforms and their last turn, the newest failed turns with their ids (to look up in the
log), the busiest channels and users by name with their ids, and the alerts sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from bot.i18n import _
from bot.ops.activity import ActivityRecorder
from bot.ops.alerts import Alerts
from bot.storage.activity import ActivityStore, TurnSample

Render = Callable[..., Response]
CHART_DAYS = 14
WINDOW_DAYS = 7
# The chart's coordinate system (the SVG scales to the page width, up to a maximum).
WIDTH, HEIGHT = 480, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 24, 14, 50
ANSWERED, FAILED = "#4e79a7", "#e15759"


@dataclass(frozen=True, slots=True)
class PlatformState:
    name: str
    running: bool


class Overview:
    def __init__(
        self,
        *,
        store: ActivityStore,
        recorder: ActivityRecorder | None = None,
        platforms: Callable[[], Sequence[PlatformState]] = list,
        alerts: Alerts | None = None,
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.platforms = platforms
        self.alerts = alerts

    async def page(self, request: Request, render: Render) -> Response:
        return render(request, "overview.html", **(await self.context()))

    async def context(self) -> dict[str, Any]:
        if self.recorder is not None:
            await self.recorder.flush()  # this replica's newest turns count too
        now = datetime.now(UTC)
        per_day = await self.store.turns_per_day(days=CHART_DAYS)
        week = await self.store.samples(since=now - timedelta(days=WINDOW_DAYS))
        day = await self.store.samples(since=now - timedelta(days=1))
        last_turns = await self.store.last_turn_per_platform()
        since = now - timedelta(days=WINDOW_DAYS)
        return {
            "chart": day_chart(per_day, today=now.date(), days=CHART_DAYS),
            "latency": [
                (_("last 24 hours"), *percentiles(day)),
                (_("last {days} days", days=WINDOW_DAYS), *percentiles(week)),
            ],
            "models": tally(week, "models"),
            "tools": tally(week, "tools"),
            "reminders": await self.store.reminder_counts(),
            "platforms": [
                (state.name, state.running, last_turns.get(state.name))
                for state in self.platforms()
            ],
            "other_platforms": sorted(
                (name, at)
                for name, at in last_turns.items()
                if name not in {state.name for state in self.platforms()}
            ),
            "failures": await self.store.newest_failures(limit=10),
            "channels": await self.store.busiest(since=since, by="channel"),
            "users": await self.store.busiest(since=since, by="user"),
            "alerts": list(reversed(self.alerts.sent[-5:])) if self.alerts else [],
            "alerts_on": bool(self.alerts and self.alerts.enabled),
            "approvals": self.recorder.approvals_waiting if self.recorder else 0,
            "window_days": WINDOW_DAYS,
            "now": now,
        }


def percentiles(samples: Sequence[TurnSample]) -> tuple[int, str, str, str]:
    """(turns, p50, p90, p99) of answer latency, as "1.2 s" ("-" without turns)."""
    values = sorted(sample.seconds for sample in samples)
    if not values:
        return 0, "-", "-", "-"

    def at(q: float) -> str:
        # Nearest rank: the smallest value with at least q of the turns at or below it.
        rank = max(1, math.ceil(q * len(values)))
        return f"{values[rank - 1]:.2f} s"

    return len(values), at(0.50), at(0.90), at(0.99)


def tally(samples: Sequence[TurnSample], what: str) -> list[tuple[str, str, int, int]]:
    """(vendor, name, calls, failures) of the models or tools, most calls first."""
    totals: dict[tuple[str, str], list[int]] = {}
    for sample in samples:
        for name, (calls, failures) in getattr(sample, what).items():
            key = (sample.vendor if what == "models" else "", name)
            entry = totals.setdefault(key, [0, 0])
            entry[0] += calls
            entry[1] += failures
    rows = [(vendor, name, calls, failures) for (vendor, name), (calls, failures) in totals.items()]
    return sorted(rows, key=lambda row: (-row[2], row[1]))


def nice_scale(peak: int) -> tuple[int, int]:
    """(top, step) of a y axis holding `peak`: steps of 1, 2 or 5 times a power of ten,
    at most five of them."""
    if peak <= 0:
        return 4, 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            candidate = step * factor
            if math.ceil(peak / candidate) <= 5:
                return math.ceil(peak / candidate) * candidate, candidate
        step *= 10


def day_chart(per_day: dict[str, tuple[int, int]], *, today: date, days: int) -> dict[str, Any]:
    """Stacked bars per UTC day (answered below, failed on top) with both axes labelled."""
    day_list = [today - timedelta(days=days - 1 - i) for i in range(days)]
    counts = [per_day.get(d.isoformat(), (0, 0)) for d in day_list]
    top, step = nice_scale(max((a + f for a, f in counts), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / days
    bar = slot * 0.7

    def y(value: float) -> float:
        return round(TOP + plot_h - value / top * plot_h, 1)

    bars = []
    for i, (d, (answered, failed)) in enumerate(zip(day_list, counts, strict=True)):
        x = round(LEFT + i * slot + (slot - bar) / 2, 1)
        label = f"{d:%a %d %b}: {answered} answered, {failed} failed"
        for low, high, fill in ((0, answered, ANSWERED), (answered, answered + failed, FAILED)):
            if high > low:
                bars.append(
                    {
                        "x": x,
                        "y": y(high),
                        "w": round(bar, 1),
                        "h": round(y(low) - y(high), 1),
                        "fill": fill,
                        "title": label,
                    }
                )
    # Every other day gets a date under the axis (every day would not fit on a phone);
    # the newest day always does.
    x_labels = [
        {
            "x": round(LEFT + i * slot + slot / 2, 1),
            "text": f"{d:%b} {d.day}",
            "iso": d.isoformat(),
        }
        for i, d in enumerate(day_list)
        if (days - 1 - i) % 2 == 0
    ]
    y_ticks = [{"y": y(value), "text": f"{value:,}"} for value in range(0, top + 1, step)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": y(0),
        "bars": bars,
        "x_labels": x_labels,
        "x_label_y": y(0) + 18,
        "x_title_y": HEIGHT - 6,
        "x_title_x": LEFT + plot_w / 2,
        "y_title_y": TOP + plot_h / 2,
        "y_ticks": y_ticks,
        "rows": [(d, a, f) for d, (a, f) in zip(day_list, counts, strict=True)],
        "first": day_list[0],
        "last": day_list[-1],
        "total": sum(a + f for a, f in counts),
        "colours": {"answered": ANSWERED, "failed": FAILED},
    }
