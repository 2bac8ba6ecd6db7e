"""Thread catch-up: mentioned in a channel thread it has not answered in before, Parley
reads the thread once (`conversations.replies`) and the turn carries its earlier
messages, each attributed to its author (`IncomingMessage.context`, origin "thread").

Bounded: the last `MAX_MESSAGES` messages before the mention, at most `MAX_CHARS`
characters (the newest kept), at most `MAX_PAGES` pages of `PAGE_SIZE`. The read uses its
own client without the 429 retry handler: a `ratelimited` answer degrades to "without the
thread" at once, and the thread is told so once. Any other refusal (`not_in_channel`,
`missing_scope`, `thread_not_found`) degrades the same way, with a log line only. Authors'
names come from `users.info`, asked once per author and remembered for a while.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import ChatKind, ContextOrigin, ContextPart, IncomingMessage
from bot.i18n import N_, _
from integrations.slack.threads import KnownThreads
from integrations.slack.webapi import slack_call, slack_error

log = logging.getLogger(__name__)

MAX_MESSAGES = 50
MAX_CHARS = 8000
PAGE_SIZE = 200
MAX_PAGES = 5
MAX_AUTHORS = 20  # names asked per thread; the rest are shown by id
NAME_SECONDS = 3600.0
RATE_LIMITED_NOTE = N_(
    "I could not read this thread's earlier messages just now (Slack asked me to slow "
    "down), so I answer without them."
)
# Messages that are not someone writing: joins, topic changes and the like.
SKIPPED_SUBTYPES = frozenset(
    {"channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name"}
)


class RateLimited(Exception):
    pass


class ThreadCatchUp:
    """Reads a thread once for a turn that starts in it (`with_thread`)."""

    def __init__(self, client: AsyncWebClient, threads: KnownThreads) -> None:
        # Its own client: the adapter's waits out 429s, which here would hold the turn.
        self.reader = AsyncWebClient(token=client.token, base_url=client.base_url)
        self.client = client
        self.threads = threads
        self._names: dict[str, tuple[float, str]] = {}

    async def with_thread(
        self, message: IncomingMessage, event: dict[str, Any], bot_user_id: str | None
    ) -> IncomingMessage:
        """`message` with the thread's earlier messages, when it is a mention in a channel
        thread Parley has not answered in; else `message` as it is."""
        channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
        if message.chat.kind is ChatKind.DM or not thread_ts or not channel:
            return message
        if await self.threads.takes_part(channel, thread_ts):
            return message
        try:
            found = await self.read(channel, thread_ts, str(event.get("ts") or ""))
        except RateLimited:
            log.warning("slack: conversations.replies is rate limited; answering without it")
            await slack_call(
                "chat.postMessage (thread not read)",
                self.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=_(RATE_LIMITED_NOTE)
                ),
            )
            return message
        authors = {str(item.get("user")) for item in found if item.get("user")}
        names = {user: await self._name(user) for user in sorted(authors)[:MAX_AUTHORS]}
        parts = [_part(item, bot_user_id, names) for item in found]
        return replace(message, context=(*message.context, *parts))

    async def read(self, channel: str, thread_ts: str, before: str) -> list[dict[str, Any]]:
        """The last messages of the thread before `before` (the mention), bounded."""
        kept: deque[dict[str, Any]] = deque(maxlen=MAX_MESSAGES)
        cursor = ""
        for _page in range(MAX_PAGES):
            arguments: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": PAGE_SIZE}
            if before:
                arguments.update(latest=before, inclusive=False)
            if cursor:
                arguments["cursor"] = cursor
            try:
                answer = await self.reader.conversations_replies(**arguments)
            except SlackApiError as exc:
                if slack_error(exc) == "ratelimited" or exc.response.status_code == 429:
                    raise RateLimited from None
                log.warning("slack: could not read thread %s: %s", thread_ts, slack_error(exc))
                return []
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("slack: could not read thread %s: %s", thread_ts, exc)
                return []
            for item in answer.get("messages") or ():
                if _is_readable(item, before):
                    kept.append(item)
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not answer.get("has_more") or not cursor:
                break
        return _within_chars(list(kept))

    async def _name(self, user: str) -> str:
        now = time.monotonic()
        cached = self._names.get(user)
        if cached is not None and now - cached[0] < NAME_SECONDS:
            return cached[1]
        if len(self._names) > 10_000:
            self._names.clear()
        answer = await slack_call("users.info (thread author)", self.reader.users_info(user=user))
        info = (answer.get("user") if answer is not None else None) or {}
        profile = info.get("profile") or {}
        name = str(profile.get("display_name") or info.get("real_name") or info.get("name") or "")
        self._names[user] = (now, name or user)
        return name or user


def _part(item: dict[str, Any], bot_user_id: str | None, names: dict[str, str]) -> ContextPart:
    """One message as a part: a person by name (their id when it was not asked), another
    app by its name; Parley's own messages marked."""
    user = str(item.get("user") or "")
    if item.get("bot_id") and not user:
        profile = item.get("bot_profile") or {}
        name = str(item.get("username") or profile.get("name") or item["bot_id"])
        return ContextPart(ContextOrigin.THREAD, str(item["text"]), name, str(item["bot_id"]))
    own = bool(bot_user_id) and user == bot_user_id
    name = names.get(user, user)
    return ContextPart(ContextOrigin.THREAD, str(item["text"]), name, user, by_bot=own)


def _is_readable(item: dict[str, Any], before: str) -> bool:
    if not isinstance(item, dict) or not str(item.get("text") or "").strip():
        return False
    if item.get("subtype") in SKIPPED_SUBTYPES:
        return False
    ts = str(item.get("ts") or "")
    return not before or _ts(ts) < _ts(before)


def _ts(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0


def _within_chars(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest messages whose texts fit `MAX_CHARS`, the one that crosses it cut."""
    kept: list[dict[str, Any]] = []
    left = MAX_CHARS
    for item in reversed(messages):
        if left <= 0:
            break
        text = str(item["text"])
        if len(text) > left:
            item = {**item, "text": "…" + text[len(text) - left + 1 :]}
        left -= len(text)
        kept.append(item)
    kept.reverse()
    return kept
