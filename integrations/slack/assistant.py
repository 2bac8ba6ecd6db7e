"""Slack's assistant pane: the suggested prompts of a new conversation, and its stop button.

Opening the Messages tab shows prompts to start with (an admin's for that conversation,
from the console, else Parley's defaults), once per conversation and process. The stop
button of an agent session ends the turn running in that thread, for its asker only.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.desk import Desk
from bot.domain import ChatKind, ChatRef, UserRef
from bot.i18n import N_, _
from integrations.slack.convert import PLATFORM
from integrations.slack.sessions import AgentSessions
from integrations.slack.webapi import slack_call

log = logging.getLogger(__name__)

SUGGESTED_PROMPTS = [
    (N_("What can you do?"), N_("What can you do, and which tools do you have?")),
    (N_("Time somewhere"), N_("What time is it in Tokyo right now?")),
]
NOT_YOUR_TURN = N_("Only the person who asked can stop this answer.")


class AssistantPane:
    """The assistant pane's events: `app_home_opened` and `agent_session_stopped`."""

    def __init__(self, client: AsyncWebClient, desk: Desk, sessions: AgentSessions | None) -> None:
        self.client = client
        self.desk = desk
        self.sessions = sessions
        self._prompted: set[str] = set()

    async def on_home_opened(self, event: dict[str, Any]) -> None:
        channel = str(event.get("channel") or "")
        if event.get("tab") != "messages" or not channel or channel in self._prompted:
            return
        self._prompted.add(channel)
        # An admin's prompts for this conversation (the console), else the defaults.
        chosen = await self.desk.suggested_prompts(ChatRef(PLATFORM, channel, ChatKind.DM))
        await slack_call(
            "assistant.threads.setSuggestedPrompts",
            self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                title=_("Try asking"),
                prompts=chosen
                or [
                    {"title": _(title), "message": _(message)}
                    for title, message in SUGGESTED_PROMPTS
                ],
            ),
        )

    async def on_session_stopped(self, event: dict[str, Any]) -> None:
        """The stop button of an agent session: the turn running in that thread ends (it
        tells its user and leaves the session active). Only the asker stops a turn: a
        press by someone else is told so, and the session stays as it is. Slack does not
        move the session out of "processing" itself, so with no turn to stop Parley does."""
        channel, thread_ts = str(event.get("channel") or ""), str(event.get("thread_ts") or "")
        user = str(event.get("user") or "")
        if not channel or not thread_ts or not user:
            return
        kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
        thread_key = "" if kind is ChatKind.DM else thread_ts
        chat = ChatRef(PLATFORM, channel, kind)
        if self.desk.stop(chat, thread_key, UserRef(PLATFORM, user)):
            log.info("slack: %s stopped the turn in %s/%s", user, channel, thread_ts)
        elif self.desk.turn_running(chat, thread_key):
            log.info("slack: %s pressed stop on another user's turn in %s; refused", user, channel)
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel, user=user, text=_(NOT_YOUR_TURN), thread_ts=thread_ts
                ),
            )
        elif self.sessions is not None:
            await self.sessions.set_status(channel, thread_ts, working="")
