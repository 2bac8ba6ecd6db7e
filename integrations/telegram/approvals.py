"""Approval questions in Telegram: the card and its buttons, shown to the asker alone
where the Bot API can (ephemeral messages, Bot API 10.3), in the chat otherwise.

In a group the question goes out as an ephemeral message (`sendMessage` with
`ephemeral_message_parameters.receiver_user_id`; python-telegram-bot 22.8 types the API
up to 10.0, so these are raw calls through `Bot.do_api_request`). A server that refuses
the parameter (an older Bot API server: 400, or 404 for the ephemeral methods) is
remembered for the rest of the process, and questions go in the chat with buttons only
the asker can press (anyone else's press gets an alert). A server that ignored the
parameter and posted the question to everyone is noticed by its answer (no ephemeral
id) and treated the same way. Private chats are the asker's: a plain message.

Callback data is `ap:<token>:<o|a|d|s>` (once, always, deny, show all): 17 bytes, well
inside Telegram's 64.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, EndPointNotFound, TelegramError
from telegram.warnings import PTBUserWarning

from bot.approvals.cards import split_parts
from bot.i18n import _
from bot.surface import Answer, ApprovalPrompt
from integrations.telegram.delivery import ChatUnavailable, Delivery
from integrations.telegram.formatting import utf16_len

log = logging.getLogger(__name__)

APPROVAL = "ap"
CHOICES = {"o": Answer.ONCE, "a": Answer.ALWAYS, "d": Answer.DENIED}
SHOW_ALL = "s"
MESSAGE_LIMIT = 4096  # UTF-16 code units after entity parsing (plain text here)
SHOW_ALL_PARTS = 8


async def _send_raw(bot: Bot, kwargs: dict[str, Any]) -> Any:
    """sendMessage with parameters PTB 22.8 does not know, answered as a plain dict (its
    `send_message` would parse the answer as a Message, which an ephemeral one is not)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Please use 'Bot.sendMessage'", PTBUserWarning)
        return await bot.do_api_request("sendMessage", api_kwargs=kwargs)


def approval_keyboard(question: ApprovalPrompt, cut: bool) -> InlineKeyboardMarkup:
    row = [InlineKeyboardButton(_("Approve once"), callback_data=f"{APPROVAL}:{question.token}:o")]
    if question.may_remember:
        row.append(
            InlineKeyboardButton(_("Always allow"), callback_data=f"{APPROVAL}:{question.token}:a")
        )
    row.append(InlineKeyboardButton(_("Deny"), callback_data=f"{APPROVAL}:{question.token}:d"))
    rows = [row]
    if cut:
        rows.append(
            [InlineKeyboardButton(_("Show all"), callback_data=f"{APPROVAL}:{question.token}:s")]
        )
    return InlineKeyboardMarkup(rows)


@dataclass(frozen=True, slots=True)
class ShownQuestion:
    """Where a question went: an ephemeral message for `receiver`, or a chat message."""

    chat_id: int
    message_id: int
    receiver: int | None = None


class ApprovalPresenter:
    """Sends, closes and expands approval questions; one per process (it remembers
    whether the Bot API server takes ephemeral messages)."""

    def __init__(self, delivery: Delivery, *, ephemeral: bool) -> None:
        self.delivery = delivery
        self.ephemeral = ephemeral  # False once the server refused them

    @property
    def bot(self) -> Bot:
        return self.delivery.bot

    async def show(
        self,
        question: ApprovalPrompt,
        chat_id: int,
        *,
        private: bool,
        thread_id: int | None,
        reply_to: int | None,
    ) -> ShownQuestion:
        card = question.render(MESSAGE_LIMIT, utf16_len)
        keyboard = approval_keyboard(question, card.cut)
        receiver = int(question.user.platform_user_id)
        if not private and self.ephemeral:
            shown = await self._send_ephemeral(chat_id, receiver, card.text, keyboard, thread_id)
            if shown is not None:
                return shown
        message = await self.delivery.send_part(
            chat_id,
            card.text,
            thread_id=thread_id,
            reply_to=reply_to,
            markup=keyboard,
            render=False,
        )
        return ShownQuestion(chat_id, message.message_id)

    async def _send_ephemeral(
        self,
        chat_id: int,
        receiver: int,
        text: str,
        keyboard: InlineKeyboardMarkup,
        thread_id: int | None,
    ) -> ShownQuestion | None:
        kwargs: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "reply_markup": keyboard,
            "ephemeral_message_parameters": {"receiver_user_id": receiver},
        }
        if thread_id is not None:
            kwargs["message_thread_id"] = thread_id
        try:
            result = await self.delivery.call(
                lambda: _send_raw(self.bot, kwargs),
                "sendMessage (ephemeral)",
                chat_id,
            )
        except (BadRequest, EndPointNotFound) as exc:
            self._unsupported(f"refused: {exc}")
            return None
        ephemeral_id = result.get("ephemeral_message_id") if isinstance(result, dict) else None
        if not ephemeral_id:
            # Posted as an ordinary message (a server that ignores the parameter): it is
            # in the chat now, so it is answered as an in-chat question is.
            self._unsupported("the question was posted to the chat instead")
            message_id = result.get("message_id") if isinstance(result, dict) else None
            return ShownQuestion(chat_id, int(message_id)) if message_id else None
        return ShownQuestion(chat_id, int(ephemeral_id), receiver)

    def _unsupported(self, why: str) -> None:
        if self.ephemeral:
            log.warning(
                "telegram: the Bot API server does not take ephemeral messages (%s); approval "
                "questions in groups go in the chat from now on, answerable by the asker only",
                why,
            )
        self.ephemeral = False

    async def close(self, shown: ShownQuestion, question: ApprovalPrompt, answer: Answer) -> None:
        """Replace the question's buttons by what became of it."""
        card = question.render(MESSAGE_LIMIT - 200, utf16_len).text
        text = f"{card}\n\n{answer.note(question.tool)}"
        try:
            if shown.receiver is None:
                await self.delivery.edit_plain(shown.chat_id, shown.message_id, text)
                return
            kwargs = {
                "chat_id": shown.chat_id,
                "receiver_user_id": shown.receiver,
                "ephemeral_message_id": shown.message_id,
                "text": text,
            }
            await self.delivery.call(
                lambda: self.bot.do_api_request("editEphemeralMessageText", api_kwargs=kwargs),
                "editEphemeralMessageText",
                shown.chat_id,
            )
        except TelegramError as exc:  # the answer stands; only the old buttons stay
            log.info("telegram: could not close an approval question: %s", exc)

    async def show_all(self, text: str, chat_id: int, receiver: int, *, private: bool) -> bool:
        """The whole card to the asker: ephemeral in a group where the server can, in a
        private chat, else in the asker's private chat with the bot. False if it could
        not reach them (they never opened a private chat with the bot)."""
        parts = split_parts(text, MESSAGE_LIMIT, utf16_len)[:SHOW_ALL_PARTS]
        try:
            for part in parts:
                if private:
                    await self.delivery.send_part(chat_id, part, render=False)
                elif self.ephemeral:
                    kwargs = {
                        "chat_id": chat_id,
                        "text": part,
                        "ephemeral_message_parameters": {"receiver_user_id": receiver},
                    }
                    await self.delivery.call(
                        lambda kwargs=kwargs: _send_raw(self.bot, kwargs),  # type: ignore[misc]
                        "sendMessage (ephemeral)",
                        chat_id,
                    )
                else:
                    await self.delivery.send_part(receiver, part, render=False)
        except (BadRequest, EndPointNotFound, ChatUnavailable) as exc:
            log.info("telegram: could not show a question in full to %s: %s", receiver, exc)
            return False
        return True
