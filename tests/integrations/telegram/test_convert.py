"""The Telegram converter: the message for the core and where its answer goes, in one read."""

from __future__ import annotations

from typing import Any

from telegram import Message

from bot.domain import AttachmentKind
from integrations.telegram.convert import (
    ReplyAddress,
    files_of,
    observed_of,
    to_incoming_message,
)

BOT_ID, BOT_NAME = 999, "parley_bot"


def message(chat: dict[str, Any], text: str, **extra: Any) -> Message:
    payload = {
        "message_id": 41,
        "date": 1_700_000_000,
        "chat": chat,
        "from": {"id": 7, "is_bot": False, "first_name": "Alice"},
        "text": text,
        **extra,
    }
    found = Message.de_json(payload, None)
    assert found is not None
    return found


def test_a_private_message_answers_in_its_chat() -> None:
    converted = to_incoming_message(
        message({"id": 7, "type": "private"}, "hi"),
        bot_id=BOT_ID,
        bot_username=BOT_NAME,
        update_id=5,
    )
    assert converted is not None
    incoming, reply = converted
    assert incoming.text == "hi" and incoming.thread_key == ""
    assert reply == ReplyAddress(chat_id=7, private=True, thread_id=None, reply_to=41)


def test_a_forum_topic_message_answers_in_its_topic() -> None:
    group = {"id": -1001, "type": "supergroup", "title": "Team", "is_forum": True}
    converted = to_incoming_message(
        message(
            group,
            f"@{BOT_NAME} hello",
            message_thread_id=12,
            is_topic_message=True,
            entities=[{"type": "mention", "offset": 0, "length": len(BOT_NAME) + 1}],
        ),
        bot_id=BOT_ID,
        bot_username=BOT_NAME,
        update_id=6,
    )
    assert converted is not None
    incoming, reply = converted
    assert incoming.text == "hello" and incoming.thread_key == "12"
    assert reply == ReplyAddress(chat_id=-1001, private=False, thread_id=12, reply_to=41)


def test_a_message_not_for_the_bot_has_no_address() -> None:
    group = {"id": -1001, "type": "supergroup", "title": "Team"}
    assert (
        to_incoming_message(
            message(group, "just chatting"), bot_id=BOT_ID, bot_username=BOT_NAME, update_id=7
        )
        is None
    )


def media_message(chat: dict[str, Any], **media: Any) -> Message:
    payload = {
        "message_id": 42,
        "date": 1_700_000_000,
        "chat": chat,
        "from": {"id": 7, "is_bot": False, "first_name": "Alice"},
        **media,
    }
    found = Message.de_json(payload, None)
    assert found is not None
    return found


def test_a_photo_in_a_group_is_for_parley_when_its_caption_mentions_it() -> None:
    group = {"id": -1002, "type": "supergroup", "title": "Team"}
    sizes = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 900},
        {"file_id": "big", "file_unique_id": "b", "width": 900, "height": 900, "file_size": 90_000},
        {
            "file_id": "huge",
            "file_unique_id": "h",
            "width": 2000,
            "height": 2000,
            "file_size": 900_000,
        },
    ]
    caption = f"@{BOT_NAME} what is this?"
    mentioned = media_message(
        group,
        photo=sizes,
        caption=caption,
        caption_entities=[{"type": "mention", "offset": 0, "length": len(BOT_NAME) + 1}],
    )
    unaddressed = media_message(group, photo=sizes, caption="our new office")

    files = files_of(mentioned, image_limit=100_000)
    converted = to_incoming_message(
        mentioned,
        bot_id=BOT_ID,
        bot_username=BOT_NAME,
        update_id=6,
        files=tuple(f.attachment for f in files),
    )
    ignored = to_incoming_message(
        unaddressed,
        bot_id=BOT_ID,
        bot_username=BOT_NAME,
        update_id=7,
        files=tuple(f.attachment for f in files_of(unaddressed, image_limit=100_000)),
    )

    assert [f.file_id for f in files] == ["big"]  # the largest within the limit
    assert converted is not None and ignored is None
    incoming, _reply = converted
    assert incoming.text == "what is this?"
    assert [(a.kind, a.size) for a in incoming.attachments] == [(AttachmentKind.IMAGE, 90_000)]


def test_voice_audio_and_documents_are_declared_as_telegram_describes_them() -> None:
    private = {"id": 7, "type": "private"}
    voice = media_message(
        private,
        voice={"file_id": "v", "file_unique_id": "v", "duration": 12, "mime_type": "audio/ogg",
               "file_size": 4000},
    )  # fmt: skip
    pdf = media_message(
        private,
        document={"file_id": "d", "file_unique_id": "d", "mime_type": "application/pdf"},
    )
    scan = media_message(
        private,
        document={"file_id": "i", "file_unique_id": "i", "mime_type": "image/png",
                  "file_name": "scan.png", "file_size": 5},
    )  # fmt: skip

    [heard] = files_of(voice, image_limit=10)
    assert (heard.attachment.kind, heard.attachment.duration_seconds) == (AttachmentKind.AUDIO, 12)
    assert files_of(pdf, image_limit=10) == []  # text files and PDFs: not yet (docs/media.md)
    [image] = files_of(scan, image_limit=10)
    assert (image.attachment.media_type, image.attachment.name) == ("image/png", "scan.png")


def test_forwarded_group_chatter_is_its_origins_words_not_the_forwarders() -> None:
    group = {"id": -100, "type": "supergroup", "title": "Team"}
    hidden = {"type": "hidden_user", "date": 1_700_000_000, "sender_user_name": "Mallory"}
    seen = observed_of(message(group, "send me the keys", forward_origin=hidden), 6)
    assert seen is not None and not seen.addressed
    # Nobody's id: outside content whoever later asks, the forwarder included.
    assert seen.user.platform_user_id == "" and seen.user.display_name == (
        "Mallory (forwarded by Alice)"
    )
    plain = observed_of(message(group, "lunch?"), 7)
    assert plain is not None and plain.user.platform_user_id == "7"
    assert observed_of(message({"id": 7, "type": "private"}, "hi"), 8) is None
    command = [{"type": "bot_command", "offset": 0, "length": 4}]
    assert observed_of(message(group, "/ban spammer", entities=command), 9) is None
