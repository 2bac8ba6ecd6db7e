"""Approval cards in a Telegram private chat: an 8,000-character email within 4,096, Show
all, Always allow, then /tools lists and revokes the standing approval."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import SMTPServer
from tests.fakes.telegram_server import FakeTelegramServer, callback_update, private_message
from tests.integrations.telegram.conftest import AppFactory
from tools import ALL_TOOLS

ALICE = 4101
CHAT = {"id": ALICE, "type": "private", "first_name": "Alice"}
BODY = "\n".join(f"Item {n}: 温度 and 😀 figures for the week " * 3 for n in range(200))[:8000]


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def keyboard(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup")
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [button for row in (markup or {}).get("inline_keyboard", []) for button in row]


async def test_a_long_email_card_show_all_always_allow_and_revocation(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    smtp_server: SMTPServer,
) -> None:
    mail = {"to": ["ops@example.com"], "subject": "Weekly", "body": BODY}
    llm.script(
        tool_call_reply(("send_email", mail)),
        text_reply("Sent."),
        tool_call_reply(("send_email", {**mail, "subject": "Again"})),
        text_reply("Sent again."),
    )
    email = {
        "host": smtp_server.host,
        "port": smtp_server.port,
        "tls": "none",
        "sender": "parley@bot.example.com",
        "allowlist": "@example.com",
    }
    app = await telegram_app(tools=ALL_TOOLS, email=email)
    telegram.push(private_message(ALICE, "mail the weekly figures"))
    await telegram.wait_for(lambda t: any(keyboard(c) for c in t.calls_of("sendMessage")))
    [question] = [c for c in telegram.calls_of("sendMessage") if keyboard(c)]
    text = question.params["text"]
    assert utf16(text) <= 4096 and "Body (8000 characters):" in text
    assert "To: ops@example.com" in text and "Subject: Weekly" in text
    labels = [b["text"] for b in keyboard(question)]
    assert labels == ["Approve once", "Always allow", "Deny", "Show all"]
    data = {b["text"]: b["callback_data"] for b in keyboard(question)}
    message_id = question.params.get("message_id", 5000)

    telegram.push(callback_update(CHAT, message_id, ALICE, data["Show all"]))
    await telegram.wait_for(
        lambda t: sum(1 for c in t.calls_of("sendMessage") if not keyboard(c)) >= 3
    )
    parts = [c.params["text"] for c in telegram.calls_of("sendMessage") if not keyboard(c)]
    assert all(utf16(part) <= 4096 for part in parts)
    assert "".join(parts).replace("\n", "").endswith(BODY.replace("\n", ""))
    assert smtp_server.messages == []

    telegram.push(callback_update(CHAT, message_id, ALICE, data["Always allow"]))
    await telegram.wait_for(
        lambda t: "Sent." in [c.params.get("text") for c in t.calls_of("sendMessage")]
    )
    assert len(smtp_server.messages) == 1
    # The second email runs without a question.
    telegram.push(private_message(ALICE, "once more"))
    await telegram.wait_for(
        lambda t: "Sent again." in [c.params.get("text") for c in t.calls_of("sendMessage")]
    )
    assert len(smtp_server.messages) == 2
    assert len([c for c in telegram.calls_of("sendMessage") if keyboard(c)]) == 1

    telegram.push(private_message(ALICE, "/tools"))
    await telegram.wait_for(
        lambda t: any(
            "Always allowed" in c.params.get("text", "") for c in t.calls_of("sendMessage")
        )
    )
    [grant] = await app.approvals.grants()
    telegram.push(private_message(ALICE, f"/tools revoke {grant.id}"))
    await telegram.wait_for(
        lambda t: any("asks again" in c.params.get("text", "") for c in t.calls_of("sendMessage"))
    )
    assert await app.approvals.grants() == []
