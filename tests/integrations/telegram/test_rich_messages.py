"""Rich final answers (Bot API 10.1) through the real adapter, and the HTML fallback."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import BaseModel
from telegram import Bot
from telegram.error import BadRequest

from bot.domain import ToolContext, ToolProgress
from bot.toolkit import N_, Progress, tool
from integrations.telegram.rich import split_rich
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    TOKEN,
    FakeTelegramServer,
    group_message,
    private_message,
)
from tests.integrations.telegram.conftest import AppFactory, platform_of

ALICE = 4101
GROUP = -100300
BOB = 5101

ANSWER = """## Weather this week

| Day | High | Low |
| --- | --- | --- |
| Mon | 21 | 12 |
| Tue | 19 | 11 |

```python
def mean(values):
    return sum(values) / len(values)
```

That is **mild** for December."""


async def test_a_markdown_answer_with_a_table_and_code_is_one_rich_message(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(text_reply(ANSWER))
    await telegram_app(rich_messages=True)

    telegram.push(private_message(ALICE, "weather table please"))
    await telegram.wait_for(lambda t: bool(t.calls_of("sendRichMessage")))

    [answer] = telegram.calls_of("sendRichMessage")
    assert answer.params["chat_id"] == ALICE
    assert answer.params["rich_message"] == {"markdown": ANSWER}
    assert telegram.calls_of("sendMessage") == []
    assert telegram.shown(ALICE) == [ANSWER]


async def test_a_server_without_rich_messages_gets_the_html_message_and_is_not_asked_again(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram.speak_bot_api_before_rich_messages()
    llm.script(text_reply("It is **mild**."), text_reply("Still **mild**."))
    app = await telegram_app(rich_messages=True)

    with caplog.at_level(logging.WARNING, "integrations.telegram.delivery"):
        telegram.push(private_message(ALICE, "weather?"))
        await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
        telegram.push(private_message(ALICE, "and tomorrow?"))
        await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)

    assert [c.params["text"] for c in telegram.calls_of("sendMessage")] == [
        "It is <b>mild</b>.",
        "Still <b>mild</b>.",
    ]
    assert all(c.params["parse_mode"] == "HTML" for c in telegram.calls_of("sendMessage"))
    assert len(telegram.calls_of("sendRichMessage")) == 1  # remembered after the refusal
    assert platform_of(app).delivery.rich is False
    assert sum("refused a rich message" in r.getMessage() for r in caplog.records) == 1


async def test_markdown_the_server_cannot_parse_falls_back_to_html(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    telegram.fail("sendRichMessage", 400, "Bad Request: can't parse rich message")
    llm.script(text_reply("A *tricky* answer."))
    await telegram_app(rich_messages=True)

    telegram.push(private_message(ALICE, "hi"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)

    [answer] = telegram.calls_of("sendMessage")
    assert answer.params["text"] == "A <i>tricky</i> answer."


async def test_a_streamed_group_answer_is_edited_into_a_rich_message(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    words = " ".join(f"word{i}" for i in range(30))
    final = f"{words}\n\n| a | b |\n| --- | --- |\n| 1 | 2 |"
    llm.script(text_reply(final, chunk_size=6, chunk_delay=0.03))
    await telegram_app(rich_messages=True, preview_delay=0)

    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} table please"))
    await telegram.wait_for(
        lambda t: any("rich_message" in c.params for c in t.calls_of("editMessageText"))
    )

    assert telegram.calls_of("sendRichMessage") == []
    assert telegram.shown(GROUP) == [final]


class Place(BaseModel):
    place: str


RELEASE = asyncio.Event()


@tool(progress=lambda p: Progress(N_("Checking the weather in {place}…"), (("place", p.place),)))
async def slow_weather(params: Place, ctx: ToolContext) -> str:
    """The weather somewhere (waits until the test lets it answer)."""
    await RELEASE.wait()
    return f"sunny in {params.place}"


REPORTED = asyncio.Event()


@tool(progress=lambda p: Progress(N_("Checking the weather in {place}…"), (("place", p.place),)))
async def reporting_weather(params: Place, ctx: ToolContext) -> str:
    """The weather somewhere, saying how far it is (waits until the test lets it answer)."""
    assert ctx.report is not None
    await ctx.report(ToolProgress(1, 2, "asking the stations"))
    await REPORTED.wait()
    return f"sunny in {params.place}"


def drafts_html(telegram: FakeTelegramServer) -> list[str]:
    return [c.params["rich_message"]["html"] for c in telegram.calls_of("sendRichMessageDraft")]


async def test_a_private_draft_shows_a_thinking_block_and_a_line_per_running_tool(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    RELEASE.clear()
    llm.script(
        tool_call_reply(
            ("slow_weather", {"place": "Beijing"}), reasoning="The user wants Beijing's weather."
        ),
        text_reply("It is **sunny** in Beijing.", chunk_size=4, chunk_delay=0.05),
    )
    await telegram_app(tools=[slow_weather], rich_messages=True, preview_delay=0)

    telegram.push(private_message(ALICE, "Weather in Beijing?"))
    await telegram.wait_for(
        lambda t: any("Checking the weather in Beijing…" in h for h in drafts_html(t))
    )
    RELEASE.set()
    await telegram.wait_for(lambda t: bool(t.calls_of("sendRichMessage")))

    drafts = drafts_html(telegram)
    assert any(
        "<tg-thinking>The user wants Beijing&#x27;s weather.</tg-thinking>" in h for h in drafts
    )
    tool_line = next(h for h in drafts if "Checking the weather in Beijing…" in h)
    assert "<p>Checking the weather in Beijing…</p>" in tool_line
    assert all(c.params["chat_id"] == ALICE for c in telegram.calls_of("sendRichMessageDraft"))
    assert len({c.params["draft_id"] for c in telegram.calls_of("sendRichMessageDraft")}) == 1
    assert telegram.calls_of("sendMessageDraft", "sendMessage") == []
    [answer] = telegram.calls_of("sendRichMessage")
    assert answer.params["rich_message"] == {"markdown": "It is **sunny** in Beijing."}


async def test_a_running_tools_draft_line_says_how_far_it_is(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    REPORTED.clear()
    llm.script(
        tool_call_reply(("reporting_weather", {"place": "Beijing"})),
        text_reply("It is sunny in Beijing."),
    )
    await telegram_app(tools=[reporting_weather], rich_messages=True, preview_delay=0)

    telegram.push(private_message(ALICE, "Weather in Beijing?"))
    line = "<p>Checking the weather in Beijing… (1 of 2: asking the stations)</p>"
    await telegram.wait_for(lambda t: any(line in h for h in drafts_html(t)))
    REPORTED.set()
    await telegram.wait_for(lambda t: bool(t.calls_of("sendRichMessage")))
    [answer] = telegram.calls_of("sendRichMessage")
    assert answer.params["rich_message"] == {"markdown": "It is sunny in Beijing."}


async def test_a_server_without_rich_drafts_gets_plain_drafts(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    telegram.speak_bot_api_before_rich_messages()
    answer = " ".join(f"word{i}" for i in range(30))
    llm.script(text_reply(answer, chunk_size=6, chunk_delay=0.03))
    await telegram_app(rich_messages=True, preview_delay=0, draft_interval_seconds=0.1)

    telegram.push(private_message(ALICE, "talk"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)

    assert len(telegram.calls_of("sendRichMessageDraft")) == 1  # refused once, not again
    assert telegram.calls_of("sendMessageDraft")
    assert telegram.calls_of("sendRichMessage") == []
    [sent] = telegram.calls_of("sendMessage")
    assert sent.params["text"] == answer


def test_split_rich_keeps_one_message_when_it_fits_and_cuts_between_blocks() -> None:
    assert split_rich(ANSWER) == [ANSWER]
    fence = "```\n" + "\n".join(f"line {i}" for i in range(40)) + "\n```"
    table = "\n".join(["| a | b |", "| --- | --- |", *(f"| {i} | {i} |" for i in range(20))])
    text = "\n\n".join(["Intro paragraph.", fence, table, "Closing words."])

    parts = split_rich(text, limit=400, max_blocks=30)

    assert len(parts) > 1
    assert "\n\n".join(parts) == text  # cut only between blocks, nothing lost
    assert any(part == fence for part in parts) or any(fence in part for part in parts)
    assert any(table in part for part in parts)
    assert all(len(part) <= 400 for part in parts)


def test_split_rich_cuts_a_block_larger_than_a_message_like_the_html_path() -> None:
    fence = "```\n" + "\n".join(f"line {i}" for i in range(100)) + "\n```"

    parts = split_rich(fence, limit=300)

    assert len(parts) > 1
    assert all(part.startswith("```") and part.endswith("```") for part in parts)


@pytest.mark.parametrize(
    ("method", "rich", "reason"),
    [
        ("sendRichMessage", {"markdown": "x" * 32_769}, "too long"),
        ("sendRichMessage", {"markdown": "a", "html": "<p>a</p>"}, "exactly one"),
        ("sendRichMessage", {"html": "<tg-thinking>hm</tg-thinking><p>a</p>"}, "tg-thinking"),
        ("sendRichMessage", {"markdown": "\n".join(["line"] * 501)}, "too many blocks"),
        ("sendRichMessage", {"markdown": "a", "colour": "red"}, "unknown field"),
    ],
)
async def test_the_fake_refuses_rich_messages_telegram_refuses(
    telegram: FakeTelegramServer, method: str, rich: dict[str, str], reason: str
) -> None:
    async with Bot(TOKEN, base_url=telegram.base_url) as bot:
        with pytest.raises(BadRequest, match=f"(?i){reason}"):
            await bot.do_api_request(method, api_kwargs={"chat_id": ALICE, "rich_message": rich})


async def test_the_fake_takes_a_thinking_block_in_a_draft(telegram: FakeTelegramServer) -> None:
    async with Bot(TOKEN, base_url=telegram.base_url) as bot:
        html = "<tg-thinking>hm</tg-thinking><p>a</p>"
        kwargs = {"chat_id": ALICE, "draft_id": 7, "rich_message": {"html": html}}
        assert await bot.do_api_request("sendRichMessageDraft", api_kwargs=kwargs) is True
