"""`Delivery`: the one way out of a Telegram bot, and how it survives flood control.

Every Bot API call of a surface, the messenger and the keyboards goes through one
`Delivery` per bot: the final text rendered (Markdown to HTML, resent as plain text when
Telegram cannot parse it), split into parts, each in the chat's next slot; previews and
"typing…" (optional: skipped when the chat's slot is not free, never queued); edits that
would not change what the reader sees are never sent.

`deliver` runs one call and, on a 429, waits the `retry_after` Telegram asked for and
tries again (python-telegram-bot raises `RetryAfter` and never retries by itself). A
connection that failed before the request went out is retried with a short backoff; a
timeout is not (the message may have arrived, and a duplicate is worse than a retry the
user can ask for). A blocked bot or a vanished chat becomes `ChatUnavailable`, which the
surface logs once and then stays quiet.

Each call waits for, or skips, its chat's slot at the `ChatPace` of pace.py.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.i18n import _
from bot.surface import NO_ANSWER
from integrations.telegram.formatting import markdown_to_html, split_markdown, visible_text
from integrations.telegram.pace import ChatPace as ChatPace
from integrations.telegram.rich import edit_rich, send_rich, send_rich_draft, split_rich

T = TypeVar("T")
_JOIN = "\n\n"

log = logging.getLogger(__name__)

# PTB 22.2+ deprecates reading `RetryAfter.retry_after` as an int, and reads it itself
# while building the error, so every 429 would warn. Parley reads both forms
# (`retry_after_seconds`), so only that one notice is silenced here; PTB_TIMEDELTA
# would instead change the type of every duration PTB returns, to every library in
# the process.
RETRY_AFTER_NOTICE = r".*`retry_after` will be of type"
warnings.filterwarnings("ignore", RETRY_AFTER_NOTICE, PTBDeprecationWarning)


_GONE = (
    "chat not found",
    "bot was blocked",
    "bot was kicked",
    "user is deactivated",
    "have no rights to send",
    "not enough rights",
    "group chat was upgraded",
    "bot is not a member",
)


class ChatUnavailable(Exception):
    """Telegram will not take messages for this chat (blocked, kicked, deleted)."""


def retry_after_seconds(error: RetryAfter) -> float:
    """`RetryAfter.retry_after` is an int (with a deprecation warning) or a timedelta
    (PTB_TIMEDELTA=true, or PTB 23); read either without the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def is_gone(error: Exception) -> bool:
    if isinstance(error, Forbidden):
        return True
    return isinstance(error, BadRequest) and any(
        marker in error.message.lower() for marker in _GONE
    )


def is_unparsable(error: Exception) -> bool:
    return isinstance(error, BadRequest) and "can't parse entities" in error.message.lower()


def is_not_modified(error: Exception) -> bool:
    return isinstance(error, BadRequest) and "message is not modified" in error.message.lower()


async def deliver(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_retries: int,
    on_retry_after: Callable[[float], None] | None = None,
) -> T:
    """Run `call`, waiting out flood control and retrying failed connections."""
    attempt = 0
    while True:
        try:
            return await call()
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            if on_retry_after is not None:
                on_retry_after(wait)
            if attempt >= max_retries:
                raise
            log.warning("telegram flood control on %s: waiting %.1f s", what, wait)
            await asyncio.sleep(wait)
        except (Forbidden, BadRequest) as exc:
            if is_gone(exc):
                raise ChatUnavailable(exc.message) from exc
            raise
        except TimedOut:
            raise
        except NetworkError as exc:
            if attempt >= max_retries:
                raise
            wait = min(0.5 * 2**attempt, 5.0)
            log.warning("telegram network error on %s (%s): retrying in %.1f s", what, exc, wait)
            await asyncio.sleep(wait)
        attempt += 1


@dataclass(slots=True)
class Delivery:
    """The one way out of one bot: every Bot API call of its surfaces, messenger and
    keyboards goes through here (pacing, 429 retries, rendering, splitting).

    `rich`: final answers go out as rich messages (Bot API 10.1); the first refusal
    (a server without the method, or Markdown it cannot parse) turns it off for the
    rest of the process, and answers take the HTML path."""

    bot: Bot
    pace: ChatPace
    max_retries: int
    draft_interval: float
    preview_delay: float
    rich: bool

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
        for index, part in enumerate(split_markdown(text) or [_(NO_ANSWER)]):
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

    # -- previews and typing (optional: skipped, never queued) -------------------------

    def take(self, chat_id: int, interval: float | None = None) -> bool:
        return self.pace.take(chat_id, interval)

    def touch(self, chat_id: int, interval: float | None = None) -> None:
        self.pace.touch(chat_id, interval)

    def ready_in(self, chat_id: int) -> float:
        return self.pace.ready_in(chat_id)

    async def preview(
        self,
        chat_id: int,
        text: str,
        *,
        draft_id: int | None,
        thread_id: int | None,
        reply_to: int | None,
        message_id: int | None,
    ) -> Preview:
        """One optional preview: a draft (`draft_id`, private chats), else a new message
        or an edit of `message_id`. A 429 backs the chat's pace off; not retried."""
        try:
            if draft_id is not None:
                await self.bot.send_message_draft(
                    chat_id, draft_id, text, message_thread_id=thread_id
                )
            elif message_id is None:
                reply = (
                    ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to
                    else None
                )
                message = await self.bot.send_message(
                    chat_id, text, message_thread_id=thread_id, reply_parameters=reply
                )
                return Preview(shown=True, message_id=message.id)
            else:
                await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        except RetryAfter as exc:
            self.pace.back_off(chat_id, retry_after_seconds(exc))
            return Preview(shown=False, message_id=message_id)
        except BadRequest as exc:
            if not is_not_modified(exc):
                log.info("telegram streaming preview refused (%s); waiting for the final text", exc)
                return Preview(shown=False, message_id=message_id, refused=True)
        return Preview(shown=True, message_id=message_id)

    async def rich_draft(
        self, chat_id: int, draft_id: int, html: str, *, thread_id: int | None
    ) -> bool:
        """One optional rich draft (private chats): True if shown. A 429 backs the
        chat's pace off; a server without rich messages turns them off, like a refused
        final answer does."""
        try:
            await send_rich_draft(self.bot, chat_id, draft_id, html, thread_id=thread_id)
        except RetryAfter as exc:
            self.pace.back_off(chat_id, retry_after_seconds(exc))
            return False
        except EndPointNotFound as exc:
            self.rich = False
            log.warning(
                "the Bot API server has no rich drafts (%s); answers use HTML from now on", exc
            )
            return False
        except BadRequest as exc:
            log.info("telegram refused a rich draft (%s); waiting for the final text", exc)
            return False
        return True

    async def typing(self, chat_id: int, thread_id: int | None) -> None:
        await self.bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)

    # -- final text ----------------------------------------------------------------------

    async def final(
        self,
        chat_id: int,
        text: str,
        *,
        private: bool,
        thread_id: int | None,
        reply_to: int | None,
        streamed_id: int | None,
        shown: str,
    ) -> None:
        """The whole answer, rendered and split: the streamed message (`streamed_id`, if
        any) edited into the first part, the rest sent in the chat's next slots. As
        rich messages while the server takes them; from a refusal on, the HTML way."""
        if self.rich:
            rich_parts = split_rich(text) or [_(NO_ANSWER)]
            for index, part in enumerate(rich_parts):
                opening = index == 0
                edit = streamed_id if opening else None
                sent = self._rich_part(
                    chat_id, part, thread_id, reply_to if opening else None, edit
                )
                # A private chat's answer replaces its draft at once; groups keep their pace.
                at_once = opening and private and edit is None
                if not await (sent if at_once else self.paced(chat_id, sent)):
                    text = _JOIN.join(rich_parts[index:])
                    streamed_id, reply_to = edit, reply_to if opening else None
                    break
            else:
                return
        parts = split_markdown(text) or [_(NO_ANSWER)]
        if streamed_id is not None:
            try:
                await self.paced(chat_id, self.edit_part(chat_id, streamed_id, parts[0], shown))
            except BadRequest as exc:
                log.info("could not edit the streamed message (%s); sending anew", exc)
                await self.paced(chat_id, self.send_part(chat_id, parts[0], thread_id=thread_id))
        else:
            first = self.send_part(chat_id, parts[0], thread_id=thread_id, reply_to=reply_to)
            # A private chat's answer replaces its draft at once; groups keep their pace.
            await (first if private else self.paced(chat_id, first))
        for part in parts[1:]:
            await self.paced(chat_id, self.send_part(chat_id, part, thread_id=thread_id))

    async def _rich_part(
        self,
        chat_id: int,
        part: str,
        thread_id: int | None,
        reply_to: int | None,
        message_id: int | None,
    ) -> bool:
        """Send (or edit `message_id` into) one rich part; False if the server refused
        rich messages, which are then off for this process."""
        try:
            if message_id is None:
                await self.call(
                    lambda: send_rich(
                        self.bot, chat_id, part, thread_id=thread_id, reply_to=reply_to
                    ),
                    "sendRichMessage",
                    chat_id,
                )
            else:
                await self.call(
                    lambda: edit_rich(self.bot, chat_id, message_id, part),
                    "editMessageText",
                    chat_id,
                )
            return True
        except BadRequest as exc:
            if is_not_modified(exc):
                return True
            reason: TelegramError = exc
        except EndPointNotFound as exc:
            reason = exc
        self.rich = False
        log.warning(
            "the Bot API server refused a rich message (%s); answers use HTML from now on",
            reason,
        )
        return False

    async def edit_plain(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """Replace a message's text (and its buttons with `markup`; without, they go)."""
        await self.call(
            lambda: self.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            ),
            "editMessageText",
            chat_id,
        )


@dataclass(frozen=True, slots=True)
class Preview:
    """What became of one preview: shown or not, the message it lives in, and whether
    Telegram refused previews of this reply (the final text still comes)."""

    shown: bool
    message_id: int | None
    refused: bool = False
