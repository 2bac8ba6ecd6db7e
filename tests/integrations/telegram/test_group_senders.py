"""Who addresses Parley in a group: only its own commands (or `/cmd@parley`), never a
linked channel's automatic forwards; posts as a chat (anonymous admins, channels) are
answered as that chat. The real PTB bot against the fake Bot API.

Negative cases are followed by an addressed message of the same chat: by the time its
answer is sent, a wrongly started turn of the earlier updates would have asked the model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.domain import ChatKind, ChatRef, UserRef
from integrations.telegram.presses import admin_question
from integrations.telegram.surface import CANNOT_CONFIRM_AS_CHAT
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    FakeTelegramServer,
    as_chat_message,
    group_message,
)
from tests.integrations.telegram.conftest import AppFactory, platform_of
from tests.integrations.telegram.test_groups import LAUNCHED, launch

GROUP = -100200
BOB = 5001
NEWS = {"id": -100777, "title": "Team News"}
MENTION = f"@{BOT_USERNAME}"


def prompts(llm: ScriptedOpenAIServer) -> list[str]:
    return [r["messages"][-1]["content"] for r in llm.requests]


def texts(telegram: FakeTelegramServer) -> list[str]:
    return [c.params["text"] for c in telegram.calls_of("sendMessage")]


async def test_only_parleys_own_or_qualified_commands_address_it_in_a_group(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Forecast follows."))
    await telegram_app()

    telegram.push(group_message(GROUP, BOB, "/ban spammer"))  # another bot's command
    telegram.push(group_message(GROUP, BOB, "/ban spammer", reply_to_bot=True))
    telegram.push(group_message(GROUP, BOB, "/reset@other_bot"))
    telegram.push(group_message(GROUP, BOB, f"/weather@{BOT_USERNAME} Paris"))
    await telegram.wait_for(lambda t: "Forecast follows." in texts(t))
    telegram.push(group_message(GROUP, BOB, "/help"))  # Parley's own, unqualified
    await telegram.wait_for(lambda t: len(texts(t)) == 2)

    assert prompts(llm) == ["/weather Paris"]
    assert "/reset starts a new conversation" in texts(telegram)[1]


async def test_a_linked_channels_automatic_forward_is_ignored(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Hi."))
    await telegram_app()

    telegram.push(as_chat_message(GROUP, f"{MENTION} new post", channel=NEWS, automatic=True))
    telegram.push(group_message(GROUP, BOB, f"{MENTION} hello"))
    await telegram.wait_for(lambda t: len(texts(t)) == 1)

    assert prompts(llm) == ["hello"]


async def test_an_anonymous_admin_and_a_channel_are_answered_as_those_chats(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    tmp_path: Path,
) -> None:
    llm.script(text_reply("Hello, admins."), text_reply("Hello, news."))
    app = await telegram_app()

    telegram.push(as_chat_message(GROUP, f"{MENTION} hello from an admin"))
    await telegram.wait_for(lambda t: len(texts(t)) == 1)
    telegram.push(as_chat_message(GROUP, f"{MENTION} hello from the channel", channel=NEWS))
    await telegram.wait_for(lambda t: len(texts(t)) == 2)

    assert texts(telegram) == ["Hello, admins.", "Hello, news."]
    assert all(c.params["chat_id"] == GROUP for c in telegram.calls_of("sendMessage"))
    with sqlite3.connect(tmp_path / "parley.db") as db:
        users = db.execute("SELECT platform_user_id, display_name FROM users ORDER BY 1").fetchall()
    assert users == [("-100200", "Team (anonymous admin)"), ("-100777", "Team News")]

    # The group itself is an admin of the group; a channel is nobody to ask Telegram about.
    platform = platform_of(app)
    chat = ChatRef("telegram", str(GROUP), ChatKind.GROUP, "Team")
    for user, expected in (
        (UserRef("telegram", str(GROUP), "Team"), True),
        (UserRef("telegram", "-100777", "News"), False),
    ):
        ask = admin_question(platform.application.bot, user, chat)
        assert await platform.desk.is_admin(user, ask, where=chat.platform_chat_id) is expected
    assert telegram.calls_of("getChatMember") == []


async def test_a_chat_cannot_confirm_and_is_told_why(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    LAUNCHED.clear()
    llm.script(tool_call_reply(("launch", {"name": "rocket"})), text_reply("Not launched."))
    await telegram_app(tools=[launch])

    telegram.push(as_chat_message(GROUP, f"{MENTION} launch the rocket"))
    await telegram.wait_for(lambda t: len(texts(t)) == 2)

    assert texts(telegram) == [CANNOT_CONFIRM_AS_CHAT, "Not launched."]
    assert all("reply_markup" not in c.params for c in telegram.calls_of("sendMessage"))
    assert LAUNCHED == []
    assert "did not confirm" in llm.requests[1]["messages"][-1]["content"]
