"""`to_incoming_message`: a Telegram message as Parley's `IncomingMessage`, or None.

Private chats: every text message. Groups: only messages that mention the bot, reply to
it, or carry a command; the mention is taken out of the text. Forum topics keep their
own context through `thread_key` (the topic's `message_thread_id`).
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity
from telegram.constants import ChatType

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef

PLATFORM = "telegram"


def to_chat_ref(message: Message) -> ChatRef:
    chat = message.chat
    kind = ChatKind.DM if chat.type == ChatType.PRIVATE else ChatKind.GROUP
    if chat.type == ChatType.CHANNEL:
        kind = ChatKind.CHANNEL
    return ChatRef(PLATFORM, str(chat.id), kind, chat.title or chat.full_name or "")


def thread_key(message: Message) -> str:
    if message.is_topic_message and message.message_thread_id:
        return str(message.message_thread_id)
    return ""


def command_of(message: Message, bot_username: str) -> str | None:
    """The command at the start of `message` ("reset" for "/reset@bot"), if it is ours."""
    text = message.text or ""
    entities = message.entities or ()
    if not entities or entities[0].type != MessageEntity.BOT_COMMAND or entities[0].offset:
        return None
    word = text[: entities[0].length].lstrip("/")
    name, _, target = word.partition("@")
    if target and target.lower() != bot_username.lower():
        return None
    return name.lower()


def is_addressed(message: Message, bot_id: int, bot_username: str) -> bool:
    if message.chat.type == ChatType.PRIVATE:
        return True
    reply = message.reply_to_message
    # In forums every topic message "replies" to the topic's first message: not to the bot.
    topic_root = (
        message.is_topic_message
        and reply is not None
        and (reply.message_id == message.message_thread_id)
    )
    replied = reply is not None and reply.from_user is not None and reply.from_user.id == bot_id
    if replied and not topic_root:
        return True
    mention = f"@{bot_username}".lower()
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if entity.type == MessageEntity.MENTION and value.lower() == mention:
            return True
    return False


def to_incoming_message(
    message: Message, *, bot_id: int, bot_username: str, update_id: int, command: bool = False
) -> IncomingMessage | None:
    """The turn this message starts, or None when it is not for the bot (`command`: it
    carries one of the bot's commands, which addresses the bot in a group too)."""
    if message.from_user is None or message.from_user.is_bot or message.text is None:
        return None
    if not command and not is_addressed(message, bot_id, bot_username):
        return None
    text = message.text
    mention = f"@{bot_username}"
    if message.chat.type != ChatType.PRIVATE:
        text = _without(text, mention).strip()
    user = message.from_user
    return IncomingMessage(
        chat=to_chat_ref(message),
        user=UserRef(PLATFORM, str(user.id), user.full_name),
        text=text,
        thread_key=thread_key(message),
        platform_message_id=str(message.message_id),
        addressed=True,
        event_id=str(update_id),
    )


def _without(text: str, mention: str) -> str:
    lowered, needle = text.lower(), mention.lower()
    at = lowered.find(needle)
    while at != -1:
        text = text[:at] + text[at + len(mention) :]
        lowered = text.lower()
        at = lowered.find(needle)
    return re.sub(r"[ \t]{2,}", " ", text)
