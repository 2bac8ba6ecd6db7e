"""The /tools keyboard: one button per tool, which an admin taps to switch it."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import N_
from bot.toolkit import Tool

TOGGLE = "tt"
TOOLS_HINT = N_("Admins can tap a tool below to switch it on (✅) or off (⬜).")


def tools_keyboard(overview: list[tuple[Tool, bool]]) -> InlineKeyboardMarkup:
    """One button per tool, callback data `tt:<name>`. A tool whose name does not fit
    Telegram's 64-byte callback data is left off the keyboard (the console can switch it)."""
    rows = []
    for item, on in overview[:90]:
        mark = "✅" if on else "⬜"
        warn = " ⚠" if item.side_effect else ""
        data = f"{TOGGLE}:{item.name}"
        if len(data.encode()) <= 64:
            rows.append([InlineKeyboardButton(f"{mark} {item.name}{warn}", callback_data=data)])
    return InlineKeyboardMarkup(rows)
