"""Button presses on Telegram (callback queries), read and answered.

The callback data says which kind of button it was (`TOGGLE`, `INPUT`, `APPROVAL`); what
became of the press and the words for the presser come from bot/chat/presses.py, and
this module only renders them: `answerCallbackQuery` (an alert when refused), a redrawn
keyboard, the whole card in a private chat for "Show all". Who is an admin of a group is
Telegram's to say (`admin_question`).
"""

from __future__ import annotations

import logging

from telegram import Bot, CallbackQuery, Message
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

from bot.chat import presses
from bot.chat.desk import AskPlatform, Desk
from bot.domain import ChatKind, ChatRef, UserRef
from bot.i18n import _
from integrations.telegram.approvals import APPROVAL, CHOICES, SHOW_ALL, ApprovalPresenter
from integrations.telegram.convert import to_chat_ref
from integrations.telegram.delivery import Delivery
from integrations.telegram.keyboards import TOGGLE, tools_keyboard
from integrations.telegram.surface import INPUT, PLATFORM

log = logging.getLogger(__name__)

# Telegram shows at most 200 characters in a callback answer.
CALLBACK_TEXT = 200


def admin_question(bot: Bot, user: UserRef, chat: ChatRef) -> AskPlatform:
    """Telegram's own answer to "is this user an admin of this chat".

    In a private chat nobody is: owning a DM does not make anyone an admin of Parley's
    tools. Button presses always carry the presser's real id, even an anonymous admin's
    (their *messages* come from GroupAnonymousBot instead)."""

    async def ask() -> bool:
        if chat.kind is ChatKind.DM:
            return False
        if user.platform_user_id.startswith("-"):
            # Posted as a chat: the group itself is one of its anonymous admins; a
            # channel is nobody Telegram can be asked about (getChatMember takes users).
            return user.platform_user_id == chat.platform_chat_id
        try:
            member = await bot.get_chat_member(
                int(chat.platform_chat_id), int(user.platform_user_id)
            )
        except TelegramError as exc:
            log.info("telegram: admin check in %s failed: %s", chat.platform_chat_id, exc)
            raise LookupError(str(exc)) from exc  # not cached
        return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

    return ask


class CallbackPresses:
    """Reads a callback query, asks bot/chat/presses.py, and renders the reply."""

    def __init__(
        self, bot: Bot, desk: Desk, delivery: Delivery, approvals: ApprovalPresenter
    ) -> None:
        self.bot = bot
        self.desk = desk
        self.delivery = delivery
        self.approvals = approvals

    async def on_press(self, query: CallbackQuery) -> None:
        kind, _sep, rest = (query.data or "").partition(":")
        presser = UserRef(PLATFORM, str(query.from_user.id), query.from_user.full_name)
        if kind == TOGGLE:
            await self._toggle(query, presser, rest)
        elif kind == INPUT:
            await self._question(query, presser, rest)
        elif kind == APPROVAL:
            await self._approval(query, presser, rest)
        else:
            await self._answer(query, presses.not_open())

    async def _answer(self, query: CallbackQuery, reply: presses.PressReply) -> None:
        text = reply.notice or (reply.note if reply.taken else "")
        await query.answer(text[:CALLBACK_TEXT] or None, show_alert=not reply.taken)

    async def _approval(self, query: CallbackQuery, presser: UserRef, rest: str) -> None:
        token, _sep, choice = rest.partition(":")
        if choice == SHOW_ALL:
            await self._show_all(query, token, presser)
            return
        answer = CHOICES.get(choice)
        if answer is None:
            await self._answer(query, presses.not_open())
            return
        await self._answer(query, await presses.approval(self.desk, token, presser, answer))

    async def _question(self, query: CallbackQuery, presser: UserRef, rest: str) -> None:
        token, _sep, key = rest.partition(":")
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        chat = ChatRef(PLATFORM, str(chat_id), ChatKind.GROUP)
        await self._answer(query, presses.question(self.desk, token, presser, chat, key))

    async def _show_all(self, query: CallbackQuery, token: str, presser: UserRef) -> None:
        reply = await presses.full_text(self.desk, token, presser)
        if not reply.taken:
            await self._answer(query, reply)
            return
        message = query.message
        chat_id = message.chat.id if message is not None else int(presser.platform_user_id)
        private = message is not None and message.chat.type == ChatType.PRIVATE
        reached = await self.approvals.show_all(
            reply.note, chat_id, int(presser.platform_user_id), private=private
        )
        if reached:
            await query.answer()
        else:
            await query.answer(
                _("Start a private chat with me first, then press “Show all” again."),
                show_alert=True,
            )

    async def _toggle(self, query: CallbackQuery, presser: UserRef, name: str) -> None:
        message = query.message
        if not isinstance(message, Message):
            await query.answer(_("This keyboard is no longer active."))
            return
        chat = to_chat_ref(message)
        reply = await presses.toggle(
            self.desk,
            presser,
            chat,
            flip=name,
            ask=admin_question(self.bot, presser, chat),
            where=chat.platform_chat_id,
        )
        await self._answer(query, reply)
        if not reply.taken or reply.tools is None:
            return
        tools = reply.tools
        try:
            await self.delivery.call(
                lambda: query.edit_message_reply_markup(reply_markup=tools_keyboard(tools)),
                "editMessageReplyMarkup",
                message.chat.id,
            )
        except TelegramError as exc:
            log.info("telegram: could not redraw the tools keyboard: %s", exc)
