"""Claiming a Slack event before bolt acknowledges it.

Bolt acks an Events API delivery (HTTP 200, or the Socket Mode envelope) before its
listener runs, so a claim written in the listener comes too late: if the database does
not take it, Slack has its 200 and never sends the event again. `EventClaims` is bolt
middleware, run before the ack: it decides whether Parley answers the event (a DM, a
mention, a reply in a thread Parley takes part in) and claims it then, as a durable turn
when it has text (bot/turn/durable.py) or as an event, keyed `team_id:event_id` for its
app (`api_app_id`). The desk retries a claim for up to 2 s (Slack waits 3 s); when it
still cannot be written, the answer is 503 and no envelope ack, so Slack delivers the
event again. The listener then runs the claimed turn (`CLAIM` in bolt's context) and
never claims again; a retry of a claimed event finds it taken and is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.chat.desk import Desk, TurnTicket
from bot.domain import ChatKind, IncomingMessage
from integrations.slack.convert import PLATFORM, ReplyAddress, chat_kind, to_incoming_message
from integrations.slack.threads import KnownThreads

log = logging.getLogger(__name__)

CLAIM = "parley_claim"  # where the listener finds the event's claim in bolt's context
# Message subtypes that are still a person writing to Parley (None: a plain message).
USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True)
class Claimed:
    """An event Parley answers, claimed: `first` unless it was claimed before."""

    first: bool
    message: IncomingMessage
    reply: ReplyAddress
    event: dict[str, Any]
    ticket: TurnTicket | None = None


class EventClaims:
    """Bolt middleware: claims the events Parley answers before bolt acks them."""

    def __init__(self, desk: Desk, threads: KnownThreads) -> None:
        self.desk = desk
        self.threads = threads

    async def __call__(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event = body.get("event") if body.get("type") == "event_callback" else None
        if isinstance(event, dict):
            try:
                if await self._answers(event, context):
                    context[CLAIM] = await self._claim(body, event, context)
            except Exception as exc:
                log.warning(
                    "slack: could not record event %s (%s); answered 503, Slack sends it again",
                    body.get("event_id"),
                    exc,
                )
                return BoltResponse(status=503, body="")
        await next()
        return None

    async def _answers(self, event: dict[str, Any], context: AsyncBoltContext) -> bool:
        """Whether Parley answers this event (a thread's reply asks the store)."""
        kind = event.get("type")
        if kind not in ("message", "app_mention") or event.get("bot_id"):
            return False
        if kind == "message" and event.get("subtype") not in USER_SUBTYPES:
            return False  # edits, deletions, joins and bot posts
        if not event.get("user") or event["user"] == context.bot_user_id:
            return False
        if not event.get("channel"):
            # HTTP refuses these at the door (inbound.py); Socket Mode has no door.
            log.warning("slack: a %s event without channel or user was ignored", kind)
            return False
        if kind == "app_mention":
            return True
        if chat_kind(event) is ChatKind.DM:
            return True
        thread_ts = event.get("thread_ts")
        if not thread_ts:
            return False
        if context.bot_user_id and f"<@{context.bot_user_id}" in str(event.get("text", "")):
            return False  # the app_mention event of the same message starts that turn
        return await self.threads.takes_part(str(event["channel"]), str(thread_ts))

    async def _claim(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> Claimed | None:
        team_id = str(body.get("team_id") or context.team_id or "")
        event_id = str(body.get("event_id") or "")
        if not event_id:
            log.warning("slack: an event without event_id was ignored: %s", event.get("type"))
            return None
        message, reply = to_incoming_message(
            event, team_id=team_id, event_id=event_id, bot_user_id=context.bot_user_id
        )
        # Keyed by app too: two Slack apps on one database never share event ids.
        app_id = str(body.get("api_app_id") or "")
        if message.text:
            # Claimed with its input and reply address: it survives this process.
            ticket = await self.desk.claim_turn(message, app_id, asdict(reply))
            return Claimed(ticket is not None, message, reply, event, ticket)
        first = await self.desk.claim(PLATFORM, app_id, message.event_id)
        return Claimed(first, message, reply, event)
