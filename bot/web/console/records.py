"""The lists: conversations and their messages, reminders, the audit log, usage."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.i18n import _
from bot.web.console.frame import ACTOR, SURFACE, ConsoleFrame
from bot.web.forms import page_number, query_int

log = logging.getLogger("bot.web.console")

CHART_CACHE_SECONDS = 60.0
CHART_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")


class RecordPages(ConsoleFrame):
    """The paginated lists, a reminder cancelled, and the usage chart (cached a minute)."""

    async def conversations(self, request: Request) -> Response:
        channel = query_int(request, "channel")
        page = await self.store.conversations_page(page_number(request), channel)
        return self._render(
            request, "conversations.html", page=page, channel="" if channel is None else channel
        )

    async def conversation(self, request: Request) -> Response:
        conversation_id = int(request.path_params["id"])
        page = await self.store.messages_page(conversation_id, page_number(request))
        return self._render(
            request,
            "conversation.html",
            page=page,
            conversation_id=conversation_id,
            show_content=self.settings.console_show_content,
        )

    # -- reminders -------------------------------------------------------------------------

    async def reminders_page(self, request: Request) -> Response:
        status = request.query_params.get("status", "pending")
        page = await self.store.reminders_page(page_number(request), status=status)
        return self._render(
            request,
            "reminders.html",
            page=page,
            status=status,
            can_cancel=self.reminders is not None,
            notice=request.query_params.get("done", ""),
        )

    async def cancel_reminder(self, request: Request) -> Response:
        reminder_id = int(request.path_params["id"])
        if self.reminders is None:
            return self._render(
                request, "message.html", status_code=400, text=_("Reminders are not running.")
            )
        cancelled = await self.reminders.cancel(None, reminder_id)
        await self.store.audit(
            actor=ACTOR,
            action="reminder.cancel",
            surface=SURFACE,
            allowed=cancelled,
            details={"reminder_id": reminder_id}
            if cancelled
            else {"reminder_id": reminder_id, "reason": "not pending"},
        )
        done = "cancelled" if cancelled else "not-pending"
        return RedirectResponse(f"/admin/reminders?done={done}", status_code=303)

    # -- audit and usage -------------------------------------------------------------------

    async def audit(self, request: Request) -> Response:
        page = await self.store.audit_page(page_number(request))
        return self._render(request, "audit.html", page=page)

    async def usage(self, request: Request) -> Response:
        days = 30
        now = time.monotonic()
        fresh = request.query_params.get("fresh") == "1"
        if fresh or self._chart is None or now - self._chart[0] >= CHART_CACHE_SECONDS:
            # Aggregates every usage row of the month: remembered for a minute.
            self._chart = (now, await self.store.tokens_per_day(days=days))
        rows = self._chart[1]
        chart = usage_chart(rows, days=days)
        age = int(now - self._chart[0])
        return self._render(request, "usage.html", chart=chart, rows=rows, age=age)


def usage_chart(rows: list[tuple[str, str, int]], *, days: int) -> dict[str, Any]:
    """Stacked bars: tokens per day, one colour per channel (the store already grouped all
    but the top channels as "other")."""
    totals: dict[str, int] = {}
    for _day, label, tokens in rows:
        if label != "other":
            totals[label] = totals.get(label, 0) + tokens
    top = [label for label, _ in sorted(totals.items(), key=lambda kv: -kv[1])]
    today = datetime.now(UTC).date()
    day_list = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    stacks: dict[str, dict[str, int]] = {day: {} for day in day_list}
    for day, label, tokens in rows:
        key = label if label in top else "other"
        if day in stacks:
            stacks[day][key] = stacks[day].get(key, 0) + tokens
    peak = max((sum(s.values()) for s in stacks.values()), default=0) or 1
    width, height, bar = 720, 240, 720 // days
    colours = {label: CHART_COLOURS[i % len(CHART_COLOURS)] for i, label in enumerate(top)}
    colours["other"] = "#bab0ac"
    rects = []
    for i, day in enumerate(day_list):
        y = height
        for label, tokens in stacks[day].items():
            h = max(1, round(tokens / peak * (height - 20))) if tokens else 0
            y -= h
            rects.append(
                {
                    "x": i * bar + 2,
                    "y": y,
                    "w": bar - 4,
                    "h": h,
                    "colour": colours[label],
                    "title": f"{day} {label}: {tokens:,} tokens",
                }
            )
    legend = [(label, colours[label]) for label in [*top, "other"] if label in colours]
    return {
        "width": width,
        "height": height,
        "rects": rects,
        "legend": legend,
        "peak": peak,
        "first": day_list[0],
        "last": day_list[-1],
        "empty": not rows,
    }
