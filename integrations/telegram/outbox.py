"""`Outbox`: what every Telegram surface of one bot shares, and how it sends.

The bot, the per-chat pace, and the two ways of
putting final text in a chat: `send_part`/`send_markdown` (rendered to HTML, resent as
plain text when Telegram cannot parse it) and `edit_part` (which never sends an edit that
would not change what the reader sees).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest

from integrations.telegram.formatting import markdown_to_html, split_markdown, visible_text
from integrations.telegram.sender import ChatPace, deliver, is_not_modified, is_unparsable

log = logging.getLogger(__name__)

EMPTY_ANSWER = "(The model gave an empty answer. Try rephrasing.)"
T = TypeVar("T")


@dataclass(slots=True)
class Outbox:
    """What every surface of one bot shares: the bot and the pace."""

    bot: Bot
    pace: ChatPace
    max_retries: int
    draft_interval: float
    preview_delay: float
    confirm_timeout: float

    async def call(self, make: Callable[[], Awaitable[Any]], what: str, chat_id: int) -> Any:
        return await deliver(
            make,
            what=what,
            max_retries=self.max_retries,
            on_retry_after=lambda seconds: self.pace.back_off(chat_id, seconds),
        )

    async def send_markdown(
        self,
        chat_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> list[Message]:
        """Send `text` rendered, split into as many messages as it needs."""
        sent = []
        for index, part in enumerate(split_markdown(text) or [EMPTY_ANSWER]):
            reply = reply_to if not index else None
            send = self.send_part(chat_id, part, thread_id=thread_id, reply_to=reply)
            sent.append(await (self.paced(chat_id, send) if index else send))
        return sent

    async def paced(self, chat_id: int, work: Awaitable[T]) -> T:
        """Run `work` in the chat's next slot, however long it takes to come."""
        await self.pace.acquire(chat_id)
        try:
            return await work
        finally:
            self.pace.touch(chat_id)

    async def send_part(
        self,
        chat_id: int,
        part: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        markup: InlineKeyboardMarkup | None = None,
        render: bool = True,
    ) -> Message:
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None

        def send(text: str, parse_mode: str | None) -> Callable[[], Awaitable[Message]]:
            return lambda: self.bot.send_message(
                chat_id,
                text,
                parse_mode=parse_mode,
                message_thread_id=thread_id,
                reply_parameters=reply,
                reply_markup=markup,
            )

        if render:
            try:
                message: Message = await self.call(
                    send(markdown_to_html(part), ParseMode.HTML), "sendMessage", chat_id
                )
                return message
            except BadRequest as exc:
                if not is_unparsable(exc):
                    raise
                log.warning("telegram could not parse the formatting (%s); sending plain", exc)
        message = await self.call(send(part, None), "sendMessage", chat_id)
        return message

    async def edit_part(self, chat_id: int, message_id: int, part: str, shown: str) -> None:
        """Edit a message to `part` rendered; nothing if it would show the same text."""
        markup = markdown_to_html(part)
        if markup == shown or (visible_text(markup) == shown and "<" not in markup):
            return

        def edit(text: str, parse_mode: str | None) -> Callable[[], Awaitable[Any]]:
            return lambda: self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=parse_mode
            )

        try:
            await self.call(edit(markup, ParseMode.HTML), "editMessageText", chat_id)
        except BadRequest as exc:
            if is_not_modified(exc):
                return
            if not is_unparsable(exc):
                raise
            log.warning("telegram could not parse the formatting (%s); editing plain", exc)
            if part != shown:
                await self.call(edit(part, None), "editMessageText", chat_id)
