"""Button presses in Slack (block actions), read and answered.

What became of a press and the words for the presser come from bot/chat/presses.py; this
module reads Slack's `block_actions` payload and renders the reply: an ephemeral message
to the presser when refused, the answered card replaced by its note, a question step
closed, a thumbs up or down stored once. Who is a workspace admin is Slack's to say
(`admin_question`, users.info).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.cards import split_parts
from bot.chat import presses
from bot.chat.desk import Answer, AskPlatform, Desk
from bot.domain import ChatKind, ChatRef, UserRef
from bot.i18n import _
from integrations.slack.confirmations import (
    APPROVAL_ACTION,
    INPUT_ACTION,
    SECTION_LIMIT,
    SHOW_ALL,
    SHOW_ALL_PARTS,
    escape,
    mention,
    note_blocks,
    picked,
)
from integrations.slack.convert import PLATFORM
from integrations.slack.sessions import FEEDBACK_DOWN, FEEDBACK_UP, answer_text
from integrations.slack.webapi import slack_call

log = logging.getLogger(__name__)


def admin_question(client: AsyncWebClient, user: UserRef) -> AskPlatform:
    """Slack's own answer to "is this user an admin": a workspace admin or owner."""

    async def ask() -> bool:
        response = await slack_call(
            "users.info (admin check)", client.users_info(user=user.platform_user_id)
        )
        if response is None:
            raise LookupError("users.info failed")  # logged by slack_call; not cached
        info = response.get("user") or {}
        return bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))

    return ask


class ActionPresses:
    """The block actions of Parley's own messages: approvals, questions, feedback."""

    def __init__(self, client: AsyncWebClient, desk: Desk) -> None:
        self.client = client
        self.desk = desk

    async def on_feedback(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """A thumbs up or down under an answer: acknowledged at once (Slack shows an error
        otherwise), then stored once per answer and person with the answer's text."""
        await ack()
        [action] = body.get("actions") or [{}]
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        answer_ts = str(container.get("message_ts") or "")
        voter = str((body.get("user") or {}).get("id") or "")
        value = action.get("value")
        if not channel or not answer_ts or not voter or value not in (FEEDBACK_UP, FEEDBACK_DOWN):
            log.info("slack feedback press without its answer, person or rating: ignored")
            return
        kind = ChatKind.DM if channel.startswith("D") else ChatKind.CHANNEL
        counted = await self.desk.rate_answer(
            ChatRef(PLATFORM, channel, kind),
            UserRef(PLATFORM, voter),
            answer_ts,
            helpful=value == FEEDBACK_UP,
            answer=answer_text(body.get("message") or {}),
        )
        if not counted:
            log.info("slack feedback on %s by %s was given before; counted once", answer_ts, voter)

    async def on_approval(
        self,
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        await ack()
        token = str(action.get("value", ""))[:64]
        choice = str(action.get("action_id", "")).removeprefix(f"{APPROVAL_ACTION}_")
        presser = UserRef(PLATFORM, str(body.get("user", {}).get("id", "")))
        channel = str(body.get("channel", {}).get("id", ""))
        message = body.get("message") or {}
        container = body.get("container") or {}
        thread_ts = message.get("thread_ts") or container.get("thread_ts")

        async def tell(text: str) -> None:
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel, user=presser.platform_user_id, text=text, thread_ts=thread_ts
                ),
            )

        if choice == SHOW_ALL:
            shown = await presses.full_text(self.desk, token, presser)
            if not shown.taken:
                await tell(shown.notice)
                return
            parts = split_parts(escape(shown.note), SECTION_LIMIT)
            for part in parts[:SHOW_ALL_PARTS]:
                await tell(part)
            if len(parts) > SHOW_ALL_PARTS:
                await tell(_("(The rest is too long to show here.)"))
            return
        try:
            answer = Answer(choice)
        except ValueError:
            log.info("slack: an approval press with an unknown action %r", choice)
            return
        reply = await presses.approval(self.desk, token, presser, answer, mention=mention)
        if not reply.taken:
            await tell(reply.notice)
            return
        note = f"{escape(reply.note)} (<@{presser.platform_user_id}>)"
        if container.get("is_ephemeral"):
            # An ephemeral question can only be replaced through its response_url.
            try:
                await respond(replace_original=True, text=note, blocks=note_blocks(note))
            except Exception as exc:  # the answer stands; only the old buttons stay
                log.warning("slack: could not replace the answered question: %s", exc)
        elif message.get("ts"):
            await slack_call(
                "chat.update (approval answered)",
                self.client.chat_update(
                    channel=channel, ts=str(message["ts"]), text=note, blocks=note_blocks(note)
                ),
            )

    async def on_input_press(
        self,
        ack: Callable[..., Awaitable[None]],
        respond: Callable[..., Awaitable[Any]],
        body: dict[str, Any],
        action: dict[str, Any],
    ) -> None:
        """A press on a tool's question: taken only from the asker, in that channel."""
        await ack()
        key = str(action.get("action_id", "")).removeprefix(f"{INPUT_ACTION}_")
        if key in ("link", "pick"):
            return  # the link button only opens the link; ticks are read on Done
        token = str(action.get("value", ""))[:64]
        presser = UserRef(PLATFORM, str(body.get("user", {}).get("id", "")))
        channel = str(body.get("channel", {}).get("id", ""))
        chat = ChatRef(PLATFORM, channel, ChatKind.CHANNEL)
        reply = presses.question(self.desk, token, presser, chat, key, picked(body))
        container = body.get("container") or {}
        if not reply.taken:
            message = body.get("message") or {}
            await slack_call(
                "chat.postEphemeral",
                self.client.chat_postEphemeral(
                    channel=channel,
                    user=presser.platform_user_id,
                    text=reply.notice,
                    thread_ts=message.get("thread_ts") or container.get("thread_ts"),
                ),
            )
        elif container.get("is_ephemeral"):
            try:  # the step is done: its buttons go (the next step, if any, follows)
                await respond(replace_original=True, text="✓", blocks=note_blocks("✓"))
            except Exception as exc:
                log.warning("slack: could not close a question step: %s", exc)
