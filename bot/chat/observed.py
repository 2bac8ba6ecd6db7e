"""Observed group context (opt-in): a group's recent messages not addressed to Parley,
kept so the next turn addressed to it there sees what was said.

Off unless `PARLEY_GROUP_CONTEXT_MESSAGES` is N > 0. Then each group (each forum topic)
keeps its last N unaddressed messages by people, at most `PARLEY_GROUP_CONTEXT_HOURS`
old (bot/storage/observed.py), and a turn addressed to Parley in that group gets them as
`group` parts of its context: others' words, attributed, as data (bot/turn/provenance.py),
so a call that acts after them asks its requester (bot/approvals/trust.py). Only groups:
a DM has nothing to observe. docs/memory.md says what is kept, where and for how long.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.domain import ChatKind, ChatRef, ContextOrigin, ContextPart, IncomingMessage
from bot.storage.observed import ObservedStore


class GroupContext:
    def __init__(self, store: ObservedStore, *, messages: int, hours: float) -> None:
        self.store = store
        self.messages = messages
        self.retention = timedelta(hours=hours)

    @property
    def on(self) -> bool:
        return self.messages > 0

    def observes(self, chat: ChatRef) -> bool:
        return self.on and chat.kind is ChatKind.GROUP

    async def observe(self, message: IncomingMessage) -> bool:
        """Keep an unaddressed group message (when on); whether it was kept."""
        if not self.observes(message.chat) or not message.text.strip():
            return False
        await self.store.observe(
            platform=message.platform,
            chat_id=message.chat.platform_chat_id,
            thread_key=message.thread_key,
            message_id=message.platform_message_id or message.event_id,
            author=message.user.display_name,
            author_id=message.user.platform_user_id,
            text=message.text,
            at=datetime.now(UTC),
            keep=self.messages,
        )
        return True

    async def with_context(self, message: IncomingMessage) -> IncomingMessage:
        """`message` with its group's recent observed messages before its own parts."""
        if not self.observes(message.chat):
            return message
        seen = await self.store.recent(
            message.platform,
            message.chat.platform_chat_id,
            message.thread_key,
            since=datetime.now(UTC) - self.retention,
            limit=self.messages,
        )
        parts = tuple(
            ContextPart(ContextOrigin.GROUP, item.text, item.author, item.author_id)
            for item in seen
        )
        return replace(message, context=(*parts, *message.context)) if parts else message

    async def forget(self, chat: ChatRef) -> int:
        return await self.store.forget_chat(chat.platform, chat.platform_chat_id)

    async def prune(self) -> int:
        return await self.store.prune(datetime.now(UTC) - self.retention)
