"""Converters between Slack payloads and Parley's neutral types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.domain import Attachment, AttachmentKind, ChatKind, ChatRef, IncomingMessage, UserRef

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


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file shared with a message: what Slack declares about it, and where to get it.

    `url` is `url_private_download` (or `url_private`), which needs the bot token;
    `check_info` means Slack withheld the details (a Slack Connect file): files.info
    gives them."""

    attachment: Attachment
    file_id: str
    url: str
    check_info: bool = False


def to_slack_file(info: dict[str, Any]) -> SlackFile | None:
    """One entry of an event's `files` (or files.info's `file`) as a `SlackFile`, or None
    for a kind Parley does not read (text, PDF, video...). Voice clips recorded in Slack
    are `audio/*` files (subtype `slack_audio`) with `duration_ms`."""
    file_id = str(info.get("id") or "")
    if not file_id:
        return None
    if info.get("file_access") == "check_file_info":
        attachment = Attachment(AttachmentKind.IMAGE)  # a placeholder until files.info
        return SlackFile(attachment, file_id, "", check_info=True)
    declared = str(info.get("mimetype") or "").lower()
    if declared.startswith("image/"):
        kind = AttachmentKind.IMAGE
    elif declared.startswith("audio/"):
        kind = AttachmentKind.AUDIO
    else:
        return None
    size = info.get("size")
    duration = info.get("duration_ms")
    attachment = Attachment(
        kind,
        declared,
        name=str(info.get("name") or ""),
        size=size if isinstance(size, int) else 0,
        duration_seconds=duration / 1000 if isinstance(duration, int | float) else 0.0,
    )
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    return SlackFile(attachment, file_id, url)


def files_of(event: dict[str, Any]) -> list[SlackFile]:
    """The files of a `file_share` message (or a mention with files) Parley can read."""
    found = (to_slack_file(item) for item in event.get("files") or () if isinstance(item, dict))
    return [item for item in found if item is not None]


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
