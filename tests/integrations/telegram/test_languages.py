"""A Telegram user whose app speaks Chinese reads Parley in Chinese: /help, /tools and its
keyboard, an approval card and its buttons, a reminder delivery, a refused file; and
/language changes it (real PTB against the fake Bot API)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import ChatKind, ChatRef, ReminderRequest, UserRef
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import SMTPServer
from tests.fakes.telegram_server import (
    FakeTelegramServer,
    callback_update,
    private_media,
    private_message,
)
from tests.integrations.telegram.conftest import AppFactory
from tools import ALL_TOOLS

LI = 5201
CHAT = {"id": LI, "type": "private", "first_name": "Li"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def keyboard(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup")
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [button for row in (markup or {}).get("inline_keyboard", []) for button in row]


def texts(telegram: FakeTelegramServer) -> list[str]:
    return [c.params["text"] for c in telegram.calls_of("sendMessage", "editMessageText")]


async def test_a_chinese_telegram_user_reads_help_tools_an_approval_and_a_reminder_in_chinese(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    smtp_server: SMTPServer,
) -> None:
    email = {
        "host": smtp_server.host,
        "port": smtp_server.port,
        "tls": "none",
        "sender": "parley@bot.example.com",
        "allowlist": "@example.com",
    }
    app = await telegram_app(tools=ALL_TOOLS, email=email)

    telegram.push(private_message(LI, "/help", name="Li", language="zh-hans"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
    assert texts(telegram)[0].startswith("我是 Parley，一个能使用真实工具的助手。")

    telegram.push(private_message(LI, "/tools", name="Li", language="zh-hans"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)
    [tools] = [c for c in telegram.calls_of("sendMessage") if keyboard(c)]
    assert tools.params["text"].startswith("我在这个聊天中可以使用的工具：")
    assert "• send_email（执行前会询问）：" in tools.params["text"]
    assert tools.params["text"].endswith("管理员可以点下面的工具来开启（✅）或关闭（⬜）。")
    assert {b["callback_data"] for b in keyboard(tools)} >= {"tt:send_email", "tt:get_weather"}

    mail = {"to": ["wang@example.com"], "subject": "周报", "body": "本周数据见附件。"}
    llm.script(tool_call_reply(("send_email", mail)), text_reply("好的，没有发送。"))
    telegram.push(private_message(LI, "把周报发给王经理", name="Li", language="zh-hans"))
    await telegram.wait_for(
        lambda t: len([c for c in t.calls_of("sendMessage") if keyboard(c)]) == 2
    )
    card = [c for c in telegram.calls_of("sendMessage") if keyboard(c)][-1]
    assert card.params["text"].startswith("发送电子邮件")
    assert "收件人: wang@example.com" in card.params["text"]
    labels = [b["text"] for b in keyboard(card)]
    assert labels == ["仅允许这一次", "始终允许", "拒绝"]
    deny = {b["text"]: b["callback_data"] for b in keyboard(card)}["拒绝"]
    message_id = card.params.get("message_id", 5000)
    telegram.push(callback_update(CHAT, message_id, LI, deny, name="Li", language="zh-hans"))
    await telegram.wait_for(lambda t: "好的，没有发送。" in texts(t))
    assert any("已拒绝，没有执行任何操作。" in text for text in texts(telegram))
    assert smtp_server.messages == []

    # A reminder goes out with nobody writing: in the language Li's app reported.
    await app.start_scheduler()
    before = len(telegram.calls_of("sendMessage"))
    await app.reminders.create(
        ReminderRequest(
            user=UserRef("telegram", str(LI), "Li"),
            chat=ChatRef("telegram", str(LI), ChatKind.DM),
            thread_key="",
            kind="message",
            text="给妈妈打电话",
            due_at=datetime.now(UTC) + timedelta(seconds=0.2),
            timezone="Asia/Shanghai",
        )
    )
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == before + 1)
    assert telegram.calls_of("sendMessage")[-1].params["text"] == "⏰ 提醒：给妈妈打电话"


async def test_a_chinese_user_is_refused_an_oversized_picture_in_chinese(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(media={"vision": True, "max_image_bytes": 100_000})
    big = telegram.add_file(PNG, path="documents/big.png", size=3 * 1024 * 1024)

    telegram.push(
        private_media(LI, {"document": {**big, "mime_type": "image/png"}}, language="zh-CN")
    )
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)

    assert texts(telegram) == ["这张图片太大了（3.0 MB，上限为 0.1 MB）。请发送小一些的图片。"]
    assert llm.requests == []


async def test_language_chooses_english_for_a_chinese_app_and_auto_follows_it_again(
    telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app()

    for command in ("/language en", "/help", "/language auto", "/language klingon"):
        count = len(telegram.calls_of("sendMessage"))
        telegram.push(private_message(LI, command, name="Li", language="zh"))
        await telegram.wait_for(lambda t, n=count: len(t.calls_of("sendMessage")) == n + 1)

    chosen, help_text, automatic, unknown = texts(telegram)
    assert chosen == "From now on I write to you in English."
    assert help_text.startswith("I'm Parley, an assistant with real tools.")
    assert automatic == "从现在起，我会用中文给你写消息。"
    assert unknown.startswith("请选择我给你写消息时使用的语言：en, zh")
