"""Converters between Slack payloads and Parley's neutral types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef

PLATFORM = "slack"

# Slack's markdown block and chat.*Stream take at most 12,000 characters per call.
MESSAGE_LIMIT = 11_000

_CHANNEL_KINDS = {
    "im": ChatKind.DM,
    "mpim": ChatKind.GROUP,
    "group": ChatKind.CHANNEL,
    "channel": ChatKind.CHANNEL,
}


def chat_kind(event: dict[str, Any]) -> ChatKind:
    """The kind of chat an event happened in; app_mention events carry no channel_type."""
    channel_type = event.get("channel_type")
    if channel_type in _CHANNEL_KINDS:
        return _CHANNEL_KINDS[channel_type]
    return ChatKind.DM if str(event.get("channel", "")).startswith("D") else ChatKind.CHANNEL


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """The text without the `<@BOT>` mention that addressed the bot."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", "", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def thread_of(event: dict[str, Any]) -> str:
    """The thread a reply to this event belongs in: its thread, or a new one under it."""
    return str(event.get("thread_ts") or event.get("ts") or "")


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    """Where the answer to an event goes: its channel and thread (a DM's answers thread
    under the message too), for the user of the team who wrote it."""

    channel: str
    thread_ts: str
    user_id: str
    team_id: str


def to_incoming_message(
    event: dict[str, Any], *, team_id: str, event_id: str, bot_user_id: str | None
) -> tuple[IncomingMessage, ReplyAddress]:
    """A `message` or `app_mention` event as an IncomingMessage, and where to answer it.

    History is per user per thread in channels (`thread_key` = the thread's ts) and one
    history per user in a DM (`thread_key` empty), as DESIGN.md says.
    """
    kind = chat_kind(event)
    channel, thread_ts, user = str(event["channel"]), thread_of(event), str(event["user"])
    message = IncomingMessage(
        chat=ChatRef(PLATFORM, channel, kind),
        user=UserRef(PLATFORM, user),
        text=strip_mention(str(event.get("text") or ""), bot_user_id),
        thread_key="" if kind is ChatKind.DM else thread_ts,
        platform_message_id=str(event.get("ts") or ""),
        addressed=True,
        event_id=f"{team_id}:{event_id}",
    )
    return message, ReplyAddress(channel, thread_ts, user, team_id)


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters, at a line break when one is
    in the second half of the piece, else at a space, else anywhere."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = cut_point(text, limit)
        pieces.append(text[:cut].rstrip("\n"))
        text = text[cut:].lstrip("\n")
    if text or not pieces:
        pieces.append(text)
    return pieces


def cut_point(text: str, limit: int) -> int:
    """Where to end a piece of at most `limit` characters of `text`."""
    for separator in ("\n", " "):
        index = text.rfind(separator, limit // 2, limit)
        if index > 0:
            return index + 1
    return limit
