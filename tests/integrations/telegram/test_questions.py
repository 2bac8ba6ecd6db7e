"""An MCP server's form in a Telegram group: each field as a step with buttons or a
typed reply, only the asker's presses count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.mcp_server import StreamableHTTPMCPServer
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    FakeTelegramServer,
    callback_update,
    group_message,
)
from tests.integrations.telegram.conftest import AppFactory

GROUP = -100777
GROUP_CHAT = {"id": GROUP, "type": "supergroup", "title": "Team"}
ALICE, BOB = 4101, 4102


def buttons(call: Any) -> dict[str, str]:
    markup = call.params.get("reply_markup")
    markup = json.loads(markup) if isinstance(markup, str) else markup
    rows = (markup or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


def questions(telegram: FakeTelegramServer) -> list[Any]:
    return [c for c in telegram.calls_of("sendMessage") if "Decline" in buttons(c)]


@pytest.fixture
def server() -> Iterator[StreamableHTTPMCPServer]:
    """Set up before the app, so stopped after it."""
    with StreamableHTTPMCPServer() as server:
        yield server


async def test_a_form_in_a_group_typed_and_pressed_by_the_asker_only(
    server: StreamableHTTPMCPServer,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    servers = {"servers": {"web": {"url": server.url, "confirm": "never"}}}
    config.write_text(json.dumps(servers), encoding="utf-8")
    await telegram_app(mcp={"config": str(config)}, admin={"default_tools_group": "all,mcp:web"})
    llm.script(
        tool_call_reply(("web_book_table", {})),
        text_reply("Hello Bob."),  # Bob's "12" is a turn of his own
        text_reply("Booked it."),
    )
    telegram.push(group_message(GROUP, ALICE, f"@{BOT_USERNAME} book a table", name="Alice"))

    await telegram.wait_for(lambda t: len(questions(t)) == 1)
    [guests] = questions(telegram)
    assert "MCP server web asks: Book a table" in guests.params["text"]
    assert "Reply with a whole number." in guests.params["text"]
    telegram.push(group_message(GROUP, BOB, "12", reply_to_bot=True))  # Bob's own turn
    telegram.push(group_message(GROUP, ALICE, "4", name="Alice", reply_to_bot=True))

    await telegram.wait_for(lambda t: len(questions(t)) == 2)
    outside = questions(telegram)[1]
    assert list(buttons(outside)) == ["Yes", "No", "Decline", "Cancel"]
    message_id = 5000
    telegram.push(callback_update(GROUP_CHAT, message_id, BOB, buttons(outside)["Yes"]))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 1)
    [refused] = telegram.calls_of("answerCallbackQuery")
    assert "someone else" in refused.params["text"]
    telegram.push(callback_update(GROUP_CHAT, message_id, ALICE, buttons(outside)["No"]))

    await telegram.wait_for(lambda t: len(questions(t)) == 3)
    time = questions(telegram)[2]
    telegram.push(callback_update(GROUP_CHAT, message_id, ALICE, buttons(time)["20:30"]))
    await telegram.wait_for(lambda t: len(questions(t)) == 4)
    note = questions(telegram)[3]
    telegram.push(callback_update(GROUP_CHAT, message_id, ALICE, buttons(note)["Skip"]))

    await telegram.wait_for(
        lambda t: "Booked it." in [c.params.get("text") for c in t.calls_of("sendMessage")]
    )
    results = [m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "tool"]
    assert results[-1] == "booked: 4 at 20:30, outside=False, note=None"
