"""An MCP server's form in a Telegram group: each field as a step with buttons or a
typed reply, only the asker's presses count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from bot.domain import (
    InputChoice,
    InputField,
    InputFieldKind,
    InputLimits,
    InputQuestion,
    ToolContext,
)
from bot.toolkit import tool
from tests.fakes.mcp_server import StreamableHTTPMCPServer
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    FakeTelegramServer,
    callback_update,
    group_message,
    private_message,
)
from tests.integrations.telegram.conftest import AppFactory

GROUP = -100777
GROUP_CHAT = {"id": GROUP, "type": "supergroup", "title": "Team"}
ALICE, BOB = 4101, 4102
LI = 4103
LI_CHAT = {"id": LI, "type": "private", "first_name": "Li"}


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
    await telegram.wait_for(lambda t: len(questions(t)) == 5)
    review = questions(telegram)[4]
    assert "Guests: 4\nOutside: No\nTime: 20:30\nNote: (skipped)" in review.params["text"]
    telegram.push(callback_update(GROUP_CHAT, message_id, ALICE, buttons(review)["Send"]))

    await telegram.wait_for(
        lambda t: "Booked it." in [c.params.get("text") for c in t.calls_of("sendMessage")]
    )
    results = [m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "tool"]
    assert results[-1] == "booked: 4 at 20:30, outside=False, note=None"


class NoParams(BaseModel):
    pass


HERO = InputField(
    "hero",
    "英雄",
    InputFieldKind.CHOICE,
    choices=(InputChoice("hero-1", "Superman"), InputChoice("hero-2", "Wonder Woman")),
    default="hero-1",
)
FISH = InputField(
    "fish",
    "鱼",
    InputFieldKind.MULTI_CHOICE,
    choices=(InputChoice("fish-1", "Tuna"), InputChoice("fish-2", "Salmon")),
    default=["fish-1"],
    limits=InputLimits(min_items=1, max_items=3),
)


@tool()
async def pick_favourites(params: NoParams, ctx: ToolContext) -> str:
    """Ask the user for their favourites."""
    assert ctx.ask is not None
    answer = await ctx.ask(InputQuestion("Favourites?", fields=(HERO, FISH), asked_by="Quiz"))
    return f"{answer.action}: {json.dumps(answer.values, sort_keys=True)}"


async def test_titled_choices_and_toggles_in_a_private_chat_in_chinese(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app((pick_favourites,))
    llm.script(tool_call_reply(("pick_favourites", {})), text_reply("好的。"))
    telegram.push(private_message(LI, "我喜欢什么", name="Li", language="zh-hans"))

    def asked(t: FakeTelegramServer) -> list[Any]:
        return [c for c in t.calls_of("sendMessage") if "拒绝" in buttons(c)]

    await telegram.wait_for(lambda t: len(asked(t)) == 1)
    [hero] = asked(telegram)
    assert "默认：Superman" in hero.params["text"]
    assert list(buttons(hero)) == ["Superman", "Wonder Woman", "保留 Superman", "拒绝", "取消"]
    telegram.push(callback_update(LI_CHAT, 1, LI, buttons(hero)["Wonder Woman"], name="Li"))

    await telegram.wait_for(lambda t: len(asked(t)) == 2)
    fish = asked(telegram)[1]
    assert list(buttons(fish))[:3] == ["✓ Tuna", "Salmon", "完成"]
    assert "选项数：1 到 3。" in fish.params["text"]
    telegram.push(callback_update(LI_CHAT, 2, LI, buttons(fish)["Salmon"], name="Li"))

    def redrawn(t: FakeTelegramServer) -> list[Any]:
        return [c for c in t.calls_of("editMessageText") if "✓ Salmon" in buttons(c)]

    await telegram.wait_for(lambda t: len(redrawn(t)) == 1)  # the same message, redrawn
    [toggled] = redrawn(telegram)
    assert list(buttons(toggled))[:2] == ["✓ Tuna", "✓ Salmon"]
    assert len(asked(telegram)) == 2
    telegram.push(callback_update(LI_CHAT, 2, LI, buttons(toggled)["✓ Tuna"], name="Li"))
    await telegram.wait_for(
        lambda t: any(
            list(buttons(c))[:2] == ["Tuna", "✓ Salmon"] for c in t.calls_of("editMessageText")
        )
    )
    telegram.push(callback_update(LI_CHAT, 2, LI, buttons(toggled)["完成"], name="Li"))
    await telegram.wait_for(lambda t: len(asked(t)) == 3)
    review = asked(telegram)[2]
    assert "英雄: Wonder Woman\n鱼: Salmon" in review.params["text"]
    assert list(buttons(review)) == ["发送", "修改", "拒绝", "取消"]
    telegram.push(callback_update(LI_CHAT, 3, LI, buttons(review)["发送"], name="Li"))

    await telegram.wait_for(
        lambda t: "好的。" in [c.params.get("text") for c in t.calls_of("sendMessage")]
    )
    results = [m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "tool"]
    assert results == ['accept: {"fish": ["fish-2"], "hero": "hero-2"}']
