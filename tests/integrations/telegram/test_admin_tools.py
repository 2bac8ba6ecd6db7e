"""`/tools` in Telegram: an inline keyboard of toggles; admins switch, others are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Application
from bot.storage.models import AuditEntry
from tests.apps import two_providers
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    FakeTelegramServer,
    callback_update,
    group_message,
    private_message,
)
from tests.integrations.telegram.conftest import AppFactory
from tools.clock import get_current_time

GROUP = -100300
ADMIN, MEMBER = 7001, 7002
CHAT = {"id": GROUP, "type": "supergroup", "title": "Team"}


async def audit(app: Application) -> list[AuditEntry]:
    async with app.database.read() as session:
        result = await session.exec(select(AuditEntry).order_by(AuditEntry.id))  # type: ignore[call-overload]
        return list(result.scalars())


async def tools_keyboard(telegram: FakeTelegramServer) -> tuple[int, list[dict[str, Any]]]:
    """(message id, buttons) of the /tools answer."""
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
    [sent] = telegram.calls_of("sendMessage")
    rows = sent.params["reply_markup"]["inline_keyboard"]
    return 5000, [row[0] for row in rows]  # the fake's first message id in a chat


async def test_a_group_admin_switches_a_tool_and_the_next_turn_sees_it(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    app = await telegram_app(tools=[get_current_time])
    telegram.make_admin(GROUP, ADMIN)
    telegram.push(group_message(GROUP, MEMBER, "/tools"))
    message_id, buttons = await tools_keyboard(telegram)
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        ("✅ get_current_time", "tt:get_current_time")
    ]

    telegram.push(callback_update(CHAT, message_id, ADMIN, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("editMessageReplyMarkup")) == 1)
    [answer] = telegram.calls_of("answerCallbackQuery")
    assert answer.params["text"] == "get_current_time disabled."
    [redraw] = telegram.calls_of("editMessageReplyMarkup")
    assert redraw.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "⬜ get_current_time"

    llm.set_default(text_reply("No clock for me."))
    telegram.push(group_message(GROUP, MEMBER, f"@{BOT_USERNAME} what time is it?"))
    await telegram.wait_for(lambda t: len(llm.requests) == 1)
    assert "tools" not in llm.requests[0]
    [entry] = await audit(app)
    assert (entry.actor, entry.place, entry.surface, entry.allowed) == (
        f"telegram:{ADMIN}",
        f"telegram:{GROUP}",
        "telegram",
        True,
    )


async def test_a_member_is_refused_told_and_audited(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    app = await telegram_app(tools=[get_current_time])
    telegram.push(group_message(GROUP, MEMBER, "/tools"))
    message_id, _ = await tools_keyboard(telegram)

    telegram.push(callback_update(CHAT, message_id, MEMBER, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 1)
    [answer] = telegram.calls_of("answerCallbackQuery")
    assert "Only admins" in answer.params["text"] and answer.params["show_alert"] is True
    assert telegram.calls_of("editMessageReplyMarkup") == []
    assert len(telegram.calls_of("getChatMember")) == 1
    [entry] = await audit(app)
    assert entry.actor == f"telegram:{MEMBER}" and entry.allowed is False

    # Asked again within the cache time: Telegram is not asked twice.
    telegram.push(callback_update(CHAT, message_id, MEMBER, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 2)
    assert len(telegram.calls_of("getChatMember")) == 1

    llm.set_default(text_reply("tick"))
    telegram.push(group_message(GROUP, MEMBER, f"@{BOT_USERNAME} time?"))
    await telegram.wait_for(lambda t: len(llm.requests) == 1)
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["get_current_time"]


async def test_in_a_private_chat_only_parley_admins_may_switch(
    telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(tools=[get_current_time], admin={"admins": f"telegram:{ADMIN}"})
    private = {"id": MEMBER, "type": "private", "first_name": "Mia"}
    telegram.push(private_message(MEMBER, "/tools"))
    message_id, _ = await tools_keyboard(telegram)

    telegram.push(callback_update(private, message_id, MEMBER, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 1)
    assert "Only admins" in telegram.calls_of("answerCallbackQuery")[0].params["text"]
    assert telegram.calls_of("getChatMember") == []

    admin_dm = {"id": ADMIN, "type": "private", "first_name": "Ada"}
    telegram.push(private_message(ADMIN, "/tools"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)
    telegram.push(callback_update(admin_dm, 5000, ADMIN, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 2)
    assert (
        telegram.calls_of("answerCallbackQuery")[1].params["text"] == "get_current_time disabled."
    )


async def test_a_failed_admin_check_refuses_once_and_is_not_remembered(
    telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(tools=[get_current_time])
    telegram.make_admin(GROUP, ADMIN)
    telegram.push(group_message(GROUP, ADMIN, "/tools"))
    message_id, _ = await tools_keyboard(telegram)
    telegram.fail("getChatMember", 500, "Internal Server Error")

    telegram.push(callback_update(CHAT, message_id, ADMIN, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 1)
    telegram.push(callback_update(CHAT, message_id, ADMIN, "tt:get_current_time"))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 2)

    refused, done = (c.params["text"] for c in telegram.calls_of("answerCallbackQuery"))
    assert "Only admins" in refused and done == "get_current_time disabled."


async def test_provider_shows_the_chats_provider_and_admins_choose_another(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/provider: everyone sees which provider answers and the names there are; a member
    may not choose (refused, audited); an unknown name is refused with the known ones; an
    admin's choice answers the next turn, and `/provider default` undoes it."""
    app = await telegram_app(tools=[], llm=two_providers(tmp_path, llm.base_url, monkeypatch))
    telegram.make_admin(GROUP, ADMIN)
    llm.set_default(text_reply("Hi."))

    async def say(user: int, text: str) -> str:
        sent = len(telegram.calls_of("sendMessage"))
        telegram.push(group_message(GROUP, user, text))
        await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) > sent)
        return str(telegram.calls_of("sendMessage")[-1].params["text"])

    shown = await say(MEMBER, "/provider")
    assert "This chat is answered by primary." in shown
    assert "Providers: primary, backup (primary is the default)." in shown
    assert "/provider backup" in shown and "/provider default" in shown

    assert "Only admins can choose" in await say(MEMBER, "/provider backup")
    assert (
        await say(ADMIN, "/provider nobody")
        == "There is no provider named nobody. Known providers: primary, backup."
    )
    assert await say(ADMIN, f"/provider@{BOT_USERNAME} backup") == (
        "This chat is now answered by backup."
    )
    assert "answered by backup." in await say(MEMBER, "/provider")
    await say(MEMBER, f"@{BOT_USERNAME} hello")
    assert llm.requests[-1]["model"] == "backup-model"

    assert "default provider again (primary)" in await say(ADMIN, "/provider default")
    await say(MEMBER, f"@{BOT_USERNAME} hello again")
    assert llm.requests[-1]["model"] == "primary-model"

    entries = [e for e in await audit(app) if e.action == "channel.provider"]
    assert [(e.actor, e.allowed, e.details["provider"]) for e in entries] == [
        (f"telegram:{MEMBER}", False, "backup"),
        (f"telegram:{ADMIN}", True, "backup"),
        (f"telegram:{ADMIN}", True, None),
    ]
    assert {e.place for e in entries} == {f"telegram:{GROUP}"}
