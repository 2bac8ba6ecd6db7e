"""Reminders and scheduled follow-ups: create, list, cancel; and the user's timezone."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, Field

from bot.domain import (
    ChatKind,
    Recurrence,
    ReminderInfo,
    ReminderKind,
    ReminderRequest,
    ToolContext,
)
from bot.errors import ToolError
from bot.toolkit import N_, ApprovalCard, Progress, tool

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CreateReminderParams(BaseModel):
    text: str = Field(
        description="For kind 'message': the reminder text to deliver. For kind "
        "'follow_up': the instruction you will carry out at that time, written as the "
        "user's request (e.g. 'Check the weather in Hangzhou and tell me if I need an "
        "umbrella').",
        min_length=1,
        max_length=2000,
    )
    kind: Literal["message", "follow_up"] = Field(
        "message",
        description="'message' delivers the text; 'follow_up' runs the text as a fresh "
        "request at that time (with tools) and delivers the answer.",
    )
    at: str | None = Field(
        None,
        description="When, as an ISO local date-time in the user's timezone, e.g. "
        "'2026-11-24T09:00'. For a repeating reminder, the first occurrence (its time of "
        "day, and for 'weekly' its weekday, set the pattern). Leave empty to use in_seconds.",
    )
    in_seconds: int | None = Field(
        None, ge=1, le=366 * 86400, description="Or: how many seconds from now (20 min = 1200)."
    )
    repeat: Literal["none", "daily", "weekdays", "weekly", "cron"] = Field(
        "none", description="Repeat pattern, in the user's timezone."
    )
    cron: str | None = Field(
        None,
        description="Only for repeat='cron': a 5-field crontab in the user's timezone, "
        "e.g. '0 9 1 * *' (9:00 on the 1st of each month).",
    )


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone {name!r}") from None


def _first_due(params: CreateReminderParams, ctx: ToolContext) -> datetime:
    zone = _zone(ctx.timezone)
    now = ctx.now.astimezone(zone)
    if params.at and params.in_seconds:
        raise ToolError("Give either 'at' or 'in_seconds', not both.")
    if params.in_seconds:
        return now + timedelta(seconds=params.in_seconds)
    if not params.at:
        raise ToolError("Say when: 'at' (local ISO date-time) or 'in_seconds'.")
    try:
        moment = datetime.fromisoformat(params.at)
    except ValueError:
        raise ToolError(
            f"'at' must be an ISO date-time like 2026-11-24T09:00, not {params.at!r}."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment <= now - timedelta(seconds=30) and params.repeat == "none":
        raise ToolError(
            f"{params.at} is in the past: it is now {now:%Y-%m-%d %H:%M} in {ctx.timezone}."
        )
    return moment


def _cron(params: CreateReminderParams, first: datetime) -> str:
    if params.repeat == "none":
        return ""
    if params.repeat == "cron":
        fields = (params.cron or "").split()
        if len(fields) != 5:
            raise ToolError("repeat='cron' needs a 5-field crontab in 'cron', e.g. '30 8 * * 1'.")
        return " ".join(fields)
    time = f"{first.minute} {first.hour}"
    if params.repeat == "daily":
        return f"{time} * * *"
    if params.repeat == "weekdays":
        return f"{time} * * mon-fri"
    return f"{time} * * {WEEKDAYS[first.weekday()]}"


def describe(info: ReminderInfo) -> dict[str, Any]:
    local = info.due_at.astimezone(_zone(info.timezone))
    shown: dict[str, Any] = {
        "id": info.id,
        "kind": info.kind,
        "text": info.text,
        "next": f"{local:%a %Y-%m-%d %H:%M} {info.timezone}",
        "repeat": info.recurrence,
        "status": info.status,
    }
    if info.recurrence == "cron":
        shown["cron"] = info.cron
    if info.last_error:
        shown["last_error"] = info.last_error
    return shown


def _reminder_card(params: CreateReminderParams) -> ApprovalCard:
    """When and what (an admin may have a channel ask before reminders are set)."""
    lines: list[tuple[str, str]] = []
    if params.at:
        lines.append((N_("When"), params.at))
    if params.in_seconds:
        lines.append((N_("In (seconds)"), str(params.in_seconds)))
    if params.repeat != "none":
        shown = (params.cron or "") if params.repeat == "cron" else params.repeat
        lines.append((N_("Repeat"), shown))
    title = N_("Schedule a follow-up") if params.kind == "follow_up" else N_("Set a reminder")
    return ApprovalCard(title, lines=tuple(lines), body=params.text, body_label=N_("What"))


def _reminder_progress(params: CreateReminderParams) -> Progress:
    if params.kind == "follow_up":
        return Progress(N_("Scheduling the follow-up…"))
    return Progress(N_("Setting the reminder…"))


@tool(scheduling=True, card=_reminder_card, progress=_reminder_progress)
async def create_reminder(params: CreateReminderParams, ctx: ToolContext) -> dict[str, Any]:
    """Set a reminder for the user, once or repeating, delivered in this chat. Turn what
    the user said ("tomorrow at 9", "in 20 minutes", "every weekday at 8:30") into 'at'
    (local date-time in the user's timezone) or 'in_seconds', plus 'repeat'. Use kind
    'follow_up' when something must be done at that time (look up the weather, then
    answer) rather than just said."""
    book = ctx.services.reminders
    if book is None:
        raise ToolError("Reminders are not available on this bot.")
    first = _first_due(params, ctx)
    cron = _cron(params, first)
    if cron:
        first = first_occurrence(first, cron, ctx)
    kind: ReminderKind = params.kind
    recurrence: Recurrence = params.repeat
    info = await book.create(
        ReminderRequest(
            user=ctx.user,
            chat=ctx.chat,
            thread_key=ctx.thread_key,
            kind=kind,
            text=params.text,
            due_at=first,
            timezone=ctx.timezone,
            recurrence=recurrence,
            cron=cron,
        )
    )
    return {"created": describe(info)}


def first_occurrence(first: datetime, cron: str, ctx: ToolContext) -> datetime:
    """`first` itself if the pattern includes it, else the pattern's next time after it."""
    zone = _zone(ctx.timezone)
    try:
        trigger = CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as exc:
        raise ToolError(f"invalid crontab {cron!r}: {exc}") from None
    # Cron times are whole minutes: the pattern's minute of `first`, but never before now.
    start = first.astimezone(zone).replace(second=0, microsecond=0)
    now = ctx.now.astimezone(zone)
    if start < now:
        start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = trigger.get_next_fire_time(None, start)
    if found is None:
        raise ToolError(f"the crontab {cron!r} never fires")
    result: datetime = found
    return result


class ListRemindersParams(BaseModel):
    include_done: bool = Field(
        False, description="Also show delivered, cancelled and failed reminders."
    )


@tool(progress=lambda params: Progress(N_("Looking up your reminders…")))
async def list_reminders(params: ListRemindersParams, ctx: ToolContext) -> dict[str, Any]:
    """List the user's reminders and follow-ups (pending ones unless include_done), with
    their ids, which cancel_reminder takes. In a group or channel only those that deliver
    in this chat are listed; in a direct chat, all of the user's."""
    book = ctx.services.reminders
    if book is None:
        raise ToolError("Reminders are not available on this bot.")
    # A group sees what is listed: the user's private reminders stay out of it.
    here = None if ctx.chat.kind == ChatKind.DM else ctx.chat
    infos = await book.list_for(ctx.user, include_done=params.include_done, chat=here)
    return {"reminders": [describe(info) for info in infos]}


class CancelReminderParams(BaseModel):
    id: int = Field(description="The reminder's id, from list_reminders.")


def _cancel_card(params: CancelReminderParams) -> ApprovalCard:
    return ApprovalCard(N_("Cancel a reminder"), lines=((N_("Reminder"), f"#{params.id}"),))


@tool(scheduling=True, card=_cancel_card)
async def cancel_reminder(params: CancelReminderParams, ctx: ToolContext) -> str:
    """Cancel one of the user's pending reminders (a repeating one stops for good)."""
    book = ctx.services.reminders
    if book is None:
        raise ToolError("Reminders are not available on this bot.")
    if await book.cancel(ctx.user, params.id):
        return f"Reminder {params.id} is cancelled."
    raise ToolError(
        f"There is no pending reminder {params.id} of this user; call list_reminders to see them."
    )


class SetTimezoneParams(BaseModel):
    timezone: str = Field(
        description="IANA timezone name, e.g. 'Asia/Shanghai', 'Europe/Berlin', 'America/New_York'."
    )


@tool()
async def set_timezone(params: SetTimezoneParams, ctx: ToolContext) -> str:
    """Remember the user's timezone; times in reminders are then read in it. Use when the
    user says where they are or which timezone they are in."""
    book = ctx.services.timezones
    if book is None:
        raise ToolError("Timezones cannot be stored on this bot.")
    zone = _zone(params.timezone)
    await book.set_timezone(ctx.user, params.timezone)
    now = ctx.now.astimezone(zone)
    return f"Timezone set to {params.timezone}; it is now {now:%A %Y-%m-%d %H:%M} there."
