"""The Telegram converter: the message for the core and where its answer goes, in one read."""

from __future__ import annotations

from typing import Any

from telegram import Message

from integrations.telegram.convert import ReplyAddress, to_incoming_message

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
