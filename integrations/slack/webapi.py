"""Slack Web API helpers shared by the adapter: Slack's error codes logged with what to do,
one call awaited without letting an error escape, Markdown blocks, and `SlackMessenger`
for proactive posts (reminders, follow-ups)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.domain import ChatRef
from integrations.slack.convert import PLATFORM, split_text

log = logging.getLogger(__name__)

CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def markdown_blocks(text: str) -> list[dict[str, Any]]:
    """Slack renders standard Markdown in a `markdown` block (at most 12,000 chars)."""
    return [{"type": "markdown", "text": text}]


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status when the answer was not Slack's JSON."""
    data = exc.response.data
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {exc.response.status_code}"


def log_slack_error(what: str, exc: SlackApiError) -> str:
    """Log a refused Web API call (never the token); return Slack's error code."""
    error = slack_error(exc)
    if error in CHANNEL_ERRORS:
        log.warning(
            "slack %s failed: %s: Parley is not a member of that channel (invite it with "
            "/invite @Parley) or the channel no longer exists",
            what,
            error,
        )
    else:
        log.warning("slack %s failed: %s", what, error)
    return error


async def slack_call(what: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse | None:
    """Await one Web API call; on failure log it and return None."""
    try:
        return await call
    except SlackApiError as exc:
        log_slack_error(what, exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("slack %s failed: %s: %s", what, type(exc).__name__, exc)
    return None


class SlackMessenger:
    """Posts proactive messages to a channel, a thread (`thread_key`) or a DM."""

    platform: str = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, chat: ChatRef, text: str, thread_key: str = "") -> None:
        for piece in split_text(text):
            try:
                await self.client.chat_postMessage(
                    channel=chat.platform_chat_id,
                    thread_ts=thread_key or None,
                    text=piece,
                    blocks=markdown_blocks(piece),
                )
            except SlackApiError as exc:
                log_slack_error("chat.postMessage (proactive)", exc)
                raise
