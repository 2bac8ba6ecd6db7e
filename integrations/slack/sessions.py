"""Slack agent sessions (2026): a thread's status and title, tool calls as stream tasks,
and feedback buttons under answers.

`agents.sessions.setStatus` (processing while a turn runs, active when it answered; the
title, from the first question, is only used when Slack creates the session) supersedes
`assistant.threads.setStatus`. A workspace or Slack stand-in that does not know the
method (`unknown_method`) is remembered for the rest of the process, and statuses go
through the assistant method, as before. Chunk and block shapes follow docs.slack.dev
(`task_update`: id, title, status pending|in_progress|complete|error, details and output
of at most 256 characters; `context_actions` with `feedback_buttons`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.i18n import _
from integrations.slack.webapi import log_slack_error, slack_call, slack_error

log = logging.getLogger(__name__)

FEEDBACK_ACTION = "parley_feedback"
FEEDBACK_UP, FEEDBACK_DOWN = "up", "down"
TITLE_LIMIT = 200
TASK_TEXT_LIMIT = 256
TaskStatus = Literal["pending", "in_progress", "complete", "error"]


def task_chunk(
    task_id: str, title: str, status: TaskStatus, *, output: str = "", details: str = ""
) -> dict[str, Any]:
    """One tool call as a stream task; `output` is cut to a short first line, `details`
    (how far it is) to the limit."""
    chunk: dict[str, Any] = {
        "type": "task_update",
        "id": task_id,
        "title": _shorten(title, TASK_TEXT_LIMIT),
        "status": status,
    }
    if details:
        chunk["details"] = _shorten(details, TASK_TEXT_LIMIT)
    line = output.strip().splitlines()[0] if output.strip() else ""
    if line:
        chunk["output"] = _shorten(line, TASK_TEXT_LIMIT)
    return chunk


def feedback_block() -> dict[str, Any]:
    """Thumbs up and down under an answer; the press names the answer by its message."""
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "value": FEEDBACK_UP,
                    "accessibility_label": _("This answer was helpful"),
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "value": FEEDBACK_DOWN,
                    "accessibility_label": _("This answer was not helpful"),
                },
            }
        ],
    }


def answer_text(message: dict[str, Any]) -> str:
    """The text of the answer a press came from: its `text`, else its markdown blocks
    (a streamed message may carry its text in blocks only)."""
    if message.get("text"):
        return str(message["text"])
    return "\n\n".join(
        str(block.get("text") or "")
        for block in message.get("blocks") or []
        if isinstance(block, dict) and block.get("type") == "markdown"
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AgentSessions:
    """One per process: sets a thread's session status, through the agents method while
    Slack takes it (`agents`), else through the assistant one."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.agents = True

    async def set_status(
        self, channel: str, thread_ts: str, *, working: str, title: str = ""
    ) -> bool:
        """`working`: the assistant status line ("is thinking…"), empty when the turn
        is over. True if Slack showed it."""
        if self.agents:
            try:
                await self.client.agents_sessions_setStatus(
                    channel_id=channel,
                    thread_ts=thread_ts,
                    status="processing" if working else "active",
                    title=_shorten(title.strip(), TITLE_LIMIT) or None,
                )
                return True
            except SlackApiError as exc:
                if slack_error(exc) != "unknown_method":
                    log_slack_error("agents.sessions.setStatus", exc)
                    return False
                self.agents = False
                log.info(
                    "slack does not know agents.sessions.setStatus here; "
                    "using assistant.threads.setStatus from now on"
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("slack agents.sessions.setStatus failed: %s", exc)
                return False
        response = await slack_call(
            "assistant.threads.setStatus",
            self.client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=working
            ),
        )
        return response is not None and bool(working)
