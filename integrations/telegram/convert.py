"""`to_incoming_message`: a Telegram message as Parley's `IncomingMessage`, or None.

Private chats: every text message. Groups: only messages that mention the bot, reply to
it, or carry one of its commands; the mention is taken out of the text. The message a
request replies to comes with it as a quoted part, with its author (`quoted_of`); a
forwarded message's text is its origin's, not the forwarder's (`forwarded_of`). Every bot in a
group sees every command, so there an unqualified command is Parley's only if Parley has
it (`/ban spammer` is another bot's); `/cmd@<parley>` always is. Forum topics keep their
own context through `thread_key` (the topic's `message_thread_id`).

Who a turn is for (`author_of`): the person who wrote, or the chat a message was posted
as: an anonymous admin posts as the group itself, a member may post as a channel (the Bot
API puts a fake user in `from` and the real sender in `sender_chat`). Posts a linked
channel forwards into its discussion group automatically are nobody's question: ignored.
"""

from __future__ import annotations

import enum
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta

from telegram import (
    Audio,
    Message,
    MessageEntity,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    PhotoSize,
    Update,
    Voice,
)
from telegram.constants import ChatID, ChatType
from telegram.warnings import PTBDeprecationWarning

from bot.chat import NAMES
from bot.domain import (
    Attachment,
    AttachmentKind,
    ChatKind,
    ChatRef,
    ContextOrigin,
    ContextPart,
    IncomingMessage,
    UserRef,
)

PLATFORM = "telegram"
# Parley's commands: in a group, the only unqualified commands that address it.
OWN_COMMANDS = NAMES  # Parley's own commands (bot/chat/commands.py)


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


def _leading_command(message: Message) -> tuple[str, str] | None:
    """(name, target bot) of the command the text starts with ("reset", "bot")."""
    text = message.text or ""
    entities = message.entities or ()
    if not entities or entities[0].type != MessageEntity.BOT_COMMAND or entities[0].offset:
        return None
    name, _, target = text[: entities[0].length].lstrip("/").partition("@")
    return name.lower(), target.lower()


def command_of(message: Message, bot_username: str) -> str | None:
    """The command at the start of `message` ("reset" for "/reset@bot") if it is meant for
    this bot: addressed to it by name, or, unqualified, in a private chat or one of
    `OWN_COMMANDS`."""
    command = _leading_command(message)
    if command is None:
        return None
    name, target = command
    if target:
        return name if target == bot_username.lower() else None
    if message.chat.type != ChatType.PRIVATE and name not in OWN_COMMANDS:
        return None
    return name


def author_of(message: Message) -> UserRef | None:
    """Whom a turn is for: the sender, or the chat the message was posted as (the group
    for an anonymous admin, a channel); None for bots and the Telegram service account."""
    if message.chat.type != ChatType.PRIVATE and message.sender_chat is not None:
        sender = message.sender_chat
        name = sender.title or sender.username or str(sender.id)
        if sender.id == message.chat.id:
            name = f"{name} (anonymous admin)"
        return UserRef(PLATFORM, str(sender.id), name)
    user = message.from_user
    if user is None or user.is_bot or user.id == ChatID.SERVICE_CHAT:
        return None
    return UserRef(PLATFORM, str(user.id), user.full_name, language=user.language_code or "")


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
    found = {
        **message.parse_entities([MessageEntity.MENTION]),
        **message.parse_caption_entities([MessageEntity.MENTION]),
    }
    for entity, value in found.items():
        if entity.type == MessageEntity.MENTION and value.lower() == mention:
            return True
    return False


def quoted_of(message: Message, bot_id: int) -> tuple[ContextPart, ...]:
    """The message `message` replies to, as a quoted part with its author: the part the
    replier selected (`quote`) when they did, else its text or caption. None for a
    forum topic's first message (every topic message "replies" to it) or one without
    text. Parley's own message is marked `by_bot`."""
    reply = message.reply_to_message
    if reply is None or (
        message.is_topic_message and reply.message_id == message.message_thread_id
    ):
        return ()
    text = (message.quote.text if message.quote is not None else "") or reply.text
    text = text or reply.caption or ""
    if not text.strip():
        return ()
    sender = reply.from_user
    own = sender is not None and sender.id == bot_id
    author = author_of(reply) if not own else None
    if sender is not None and (own or author is None):
        name, author_id = sender.full_name, str(sender.id)
    else:
        name = author.display_name if author is not None else ""
        author_id = author.platform_user_id if author is not None else ""
    if sender is not None and sender.username and reply.sender_chat is None:
        name = f"{name} (@{sender.username})"
    return (ContextPart(ContextOrigin.QUOTED, text, name, author_id, by_bot=own),)


# What the requester's own words are when they only forwarded a message.
FORWARDED_TEXT = "[forwarded message]"


def forwarded_of(message: Message) -> ContextPart | None:
    """A forwarded message's text is its origin's words, not the forwarder's: a part of
    its own (with the origin's name and id; a hidden user's name only), or None."""
    origin = message.forward_origin
    text = message.text or message.caption or ""
    if origin is None or not text.strip():
        return None
    name, author_id = "", ""
    if isinstance(origin, MessageOriginUser):
        name, author_id = origin.sender_user.full_name, str(origin.sender_user.id)
    elif isinstance(origin, MessageOriginHiddenUser):
        name = origin.sender_user_name
    elif isinstance(origin, MessageOriginChat):
        name, author_id = origin.sender_chat.title or "", str(origin.sender_chat.id)
    elif isinstance(origin, MessageOriginChannel):
        name, author_id = origin.chat.title or "", str(origin.chat.id)
    return ContextPart(ContextOrigin.FORWARDED, text, name, author_id)


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file that came with a message: what Telegram declares about it, and the
    `file_id` to download it with (getFile)."""

    attachment: Attachment
    file_id: str


def files_of(message: Message, *, image_limit: int) -> list[FileRef]:
    """The voice note, audio file, photo or image/audio document of a message.

    A photo comes in several sizes: the largest within `image_limit` is taken (the
    smallest when none is, so that the refusal names its size)."""
    found: list[FileRef] = []
    if message.voice is not None:
        voice = message.voice
        audio = Attachment(
            AttachmentKind.AUDIO,
            voice.mime_type or "audio/ogg",
            size=voice.file_size or 0,
            duration_seconds=_seconds(voice),
        )
        found.append(FileRef(audio, voice.file_id))
    if message.audio is not None:
        track = message.audio
        audio = Attachment(
            AttachmentKind.AUDIO,
            track.mime_type or "",
            name=track.file_name or "",
            size=track.file_size or 0,
            duration_seconds=_seconds(track),
        )
        found.append(FileRef(audio, track.file_id))
    if message.photo:
        photo = _photo_size(message.photo, image_limit)
        image = Attachment(AttachmentKind.IMAGE, "image/jpeg", size=photo.file_size or 0)
        found.append(FileRef(image, photo.file_id))
    document = message.document
    if document is not None:
        declared = (document.mime_type or "").lower()
        kind = (
            AttachmentKind.IMAGE
            if declared.startswith("image/")
            else AttachmentKind.AUDIO
            if declared.startswith("audio/")
            else None
        )
        if kind is not None:
            attachment = Attachment(
                kind, declared, name=document.file_name or "", size=document.file_size or 0
            )
            found.append(FileRef(attachment, document.file_id))
    return found


def _seconds(media: Voice | Audio) -> float:
    # PTB 22 gives an int and warns that it will be a timedelta (PTB_TIMEDELTA opts in
    # early): either is read, and the warning, meant for code that assumes one, is not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        duration = media.duration
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return float(duration or 0)


def _photo_size(sizes: tuple[PhotoSize, ...], limit: int) -> PhotoSize:
    by_size = sorted(sizes, key=lambda size: (size.file_size or 0, size.width * size.height))
    fitting = [size for size in by_size if (size.file_size or 0) <= limit]
    return fitting[-1] if fitting else by_size[0]


@dataclass(frozen=True, slots=True)
class ReplyAddress:
    """Where the answer to a message goes: the chat, its forum topic (when the message is
    in one), and the message it answers (a turn's answer quotes it in groups only)."""

    chat_id: int
    private: bool
    thread_id: int | None
    reply_to: int


def to_incoming_message(
    message: Message,
    *,
    bot_id: int,
    bot_username: str,
    update_id: int,
    command: bool = False,
    files: tuple[Attachment, ...] = (),
) -> tuple[IncomingMessage, ReplyAddress] | None:
    """The turn this message starts and where to answer it, or None when it is not for
    the bot (`command`: it carries one of the bot's commands, which addresses the bot in
    a group too). With `files` (from `files_of`), the caption is the text."""
    if message.is_automatic_forward:
        return None
    if message.text is None and not files:
        return None
    user = author_of(message)
    if user is None:
        return None
    if not command:
        group = message.chat.type != ChatType.PRIVATE
        if group and _leading_command(message) is not None:
            return None  # another bot's command, even in a reply to Parley
        if not is_addressed(message, bot_id, bot_username):
            return None
    text = message.text if message.text is not None else message.caption or ""
    mention = f"@{bot_username}"
    if message.chat.type != ChatType.PRIVATE:
        text = _without(text, mention).strip()
    topic = thread_key(message)
    private = message.chat.type == ChatType.PRIVATE
    context = quoted_of(message, bot_id)
    forwarded = forwarded_of(message)
    if forwarded is not None:  # the words are the origin's; the forwarder said nothing
        text, context = FORWARDED_TEXT, (forwarded, *context)
    incoming = IncomingMessage(
        chat=to_chat_ref(message),
        user=user,
        text=text,
        thread_key=topic,
        platform_message_id=str(message.message_id),
        addressed=True,
        event_id=str(update_id),
        attachments=files,
        context=context,
    )
    reply = ReplyAddress(
        message.chat.id,
        private,
        int(topic) if topic else None,
        message.message_id,
    )
    return incoming, reply


def _without(text: str, mention: str) -> str:
    lowered, needle = text.lower(), mention.lower()
    at = lowered.find(needle)
    while at != -1:
        text = text[:at] + text[at + len(mention) :]
        lowered = text.lower()
        at = lowered.find(needle)
    return re.sub(r"[ \t]{2,}", " ", text)


class UpdateKind(enum.Enum):
    """What an update asks of Parley, read once (`classify`)."""

    TURN = "turn"  # a text message for Parley: a durable turn
    FILES = "files"  # a message for Parley with a voice note, audio or picture
    COMMAND = "command"  # one of Parley's own commands
    PRESS = "press"  # a button press (callback query)
    NOT_READABLE = "not_readable"  # a private message of a kind Parley cannot read
    OBSERVED = "observed"  # group chatter by a person: kept only if group context is on
    IGNORED = "ignored"  # not for Parley (another bot's command, a bot, a service message)


@dataclass(frozen=True, slots=True)
class ReadUpdate:
    """An update as Parley reads it: its kind and, for a message for Parley, the turn or
    command it carries and where to answer."""

    kind: UpdateKind
    incoming: IncomingMessage | None = None
    reply: ReplyAddress | None = None
    command: str = ""
    files: tuple[FileRef, ...] = ()


IGNORED = ReadUpdate(UpdateKind.IGNORED)


def classify(update: Update, *, bot_id: int, bot_username: str, image_limit: int) -> ReadUpdate:
    """Read an update once: which kind it is, and what it carries."""
    if update.callback_query is not None:
        return ReadUpdate(UpdateKind.PRESS)
    message = update.message
    if message is None:
        return IGNORED
    files = tuple(files_of(message, image_limit=image_limit))
    if message.text is None and not files:
        # Told so only in a private chat, and only a person (a bot would not read it).
        sender = message.from_user
        private = message.chat.type == ChatType.PRIVATE
        tell = private and sender is not None and not sender.is_bot
        return ReadUpdate(UpdateKind.NOT_READABLE) if tell else IGNORED
    command = command_of(message, bot_username)
    own = command in OWN_COMMANDS
    converted = to_incoming_message(
        message,
        bot_id=bot_id,
        bot_username=bot_username,
        update_id=update.update_id,
        command=command is not None,
        files=() if own else tuple(f.attachment for f in files),
    )
    if converted is None:
        chatter = observed_of(message, update.update_id) if not files else None
        return ReadUpdate(UpdateKind.OBSERVED, chatter) if chatter is not None else IGNORED
    incoming, reply = converted
    if own:
        return ReadUpdate(UpdateKind.COMMAND, incoming, reply, command=command or "")
    if files:
        return ReadUpdate(UpdateKind.FILES, incoming, reply, files=files)
    return ReadUpdate(UpdateKind.TURN, incoming, reply)


def observed_of(message: Message, update_id: int) -> IncomingMessage | None:
    """A person's text message in a group that is not for Parley, as what was said there
    (`addressed=False`): what opt-in group context keeps (bot/chat/observed.py)."""
    if message.chat.type == ChatType.PRIVATE or message.is_automatic_forward:
        return None
    if not message.text or _leading_command(message) is not None:
        return None
    user = author_of(message)
    if user is None:
        return None
    forwarded = forwarded_of(message)
    if forwarded is not None:  # the words are the origin's, whoever forwarded them
        name = f"{forwarded.author} (forwarded by {user.display_name})"
        user = UserRef(PLATFORM, forwarded.author_id, name)
    return IncomingMessage(
        chat=to_chat_ref(message),
        user=user,
        text=message.text,
        thread_key=thread_key(message),
        platform_message_id=str(message.message_id),
        addressed=False,
        event_id=str(update_id),
    )


def command_argument(text: str) -> str:
    """What follows the command word: "/forget@parley_bot 3" → "3"."""
    _command, _space, rest = text.strip().partition(" ")
    return rest.strip()
