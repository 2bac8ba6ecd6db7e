"""Private chats through the real adapter: polling, drafts, tools, commands, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import threading

import pytest

from bot.domain import ChatKind, ChatRef
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import FakeTelegramServer, private_message
from tests.integrations.telegram.conftest import AppFactory, platform_of, stop

ALICE = 4001


def sent_texts(telegram: FakeTelegramServer, chat_id: int = ALICE) -> list[str]:
    return [
        c.params["text"] for c in telegram.calls_of("sendMessage") if c.params["chat_id"] == chat_id
    ]


async def test_a_private_message_with_a_tool_call_streams_a_draft_and_sends_the_answer(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "Asia/Tokyo"})),
        # Paced chunks: a zero-latency answer could end before its first preview.
        text_reply("It is **evening** in Tokyo.", chunk_size=4, chunk_delay=0.05),
    )
    await telegram_app(preview_delay=0)

    telegram.push(private_message(ALICE, "What time is it in Tokyo?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    [answer] = telegram.calls_of("sendMessage")
    assert answer.params["text"] == "It is <b>evening</b> in Tokyo."
    assert answer.params["parse_mode"] == "HTML"
    drafts = telegram.calls_of("sendMessageDraft")
    assert drafts and all(d.params["chat_id"] == ALICE for d in drafts)
    assert len({d.params["draft_id"] for d in drafts}) == 1
    assert drafts[0].at < answer.at
    actions = telegram.calls_of("sendChatAction")
    assert actions and actions[0].params["action"] == "typing"
    second = llm.requests[1]["messages"]
    assert second[-1]["role"] == "tool"
    assert json.loads(second[-1]["content"])["timezone"] == "Asia/Tokyo"
    # The menu in English for everyone, and in Chinese for Chinese Telegram apps.
    english, chinese = telegram.calls_of("setMyCommands")
    assert "language_code" not in english.params
    assert [c["command"] for c in english.params["commands"]] == [
        "start",
        "help",
        "reset",
        "tools",
        "memory",
        "forget",
        "language",
        "provider",
    ]
    assert chinese.params["language_code"] == "zh"
    assert chinese.params["commands"][2] == {"command": "reset", "description": "开始新对话"}


async def test_drafts_are_throttled_and_never_repeat_a_text(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    answer = " ".join(f"word{i}" for i in range(40))
    llm.script(text_reply(answer, chunk_size=6, chunk_delay=0.03))
    await telegram_app(draft_interval_seconds=0.2)

    telegram.push(private_message(ALICE, "talk"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    drafts = [c for c in telegram.calls_of("sendMessageDraft") if c.params.get("text")]
    assert len(drafts) >= 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(drafts)]
    assert min(gaps) >= 0.19
    texts = [d.params["text"] for d in drafts]
    assert len(texts) == len(set(texts))
    assert all(answer.startswith(t) for t in texts)
    assert sent_texts(telegram) == [answer]


async def test_a_quick_answer_is_one_message_without_typing_or_drafts(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(text_reply("Quick and whole.", chunk_size=3))
    await telegram_app(preview_delay=2)

    telegram.push(private_message(ALICE, "quick one"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == ["Quick and whole."]
    assert telegram.calls_of("sendChatAction", "sendMessageDraft") == []


async def test_a_slow_answer_gets_typing_then_drafts_at_the_pace(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    answer = " ".join(f"word{i}" for i in range(30))
    llm.script(text_reply(answer, chunk_size=6, delay=0.6, chunk_delay=0.03))
    await telegram_app(preview_delay=0.2, draft_interval_seconds=0.2)

    telegram.push(private_message(ALICE, "think first"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    [typing] = telegram.calls_of("sendChatAction")
    drafts = telegram.calls_of("sendMessageDraft")
    assert len(drafts) >= 2 and typing.at < drafts[0].at
    assert min(b.at - a.at for a, b in itertools.pairwise(drafts)) >= 0.19
    texts = [d.params["text"] for d in drafts]
    assert len(texts) == len(set(texts)) and all(answer.startswith(t) for t in texts)
    assert sent_texts(telegram) == [answer]


async def test_text_before_a_pause_is_previewed_whole_and_once(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    first = "Let me look that up for you."
    pause = threading.Event()
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "UTC"}), text=first),
        dataclasses.replace(text_reply("It is noon."), gate=pause),
    )
    await telegram_app(preview_delay=0, draft_interval_seconds=0.2)

    def drafts(t: FakeTelegramServer) -> list[str]:
        return [d.params["text"] for d in t.calls_of("sendMessageDraft")]

    telegram.push(private_message(ALICE, "time?"))
    # The model says nothing after `first` until the test lets it, yet `first` shows
    # whole meanwhile.
    try:
        await telegram.wait_for(lambda t: first in drafts(t), within=30)
    finally:
        pause.set()
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert len(drafts(telegram)) == len(set(drafts(telegram)))
    assert sent_texts(telegram) == [f"{first}\n\nIt is noon."]


async def test_a_long_answer_is_split_at_paragraphs_into_messages_under_the_limit(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    paragraphs = [f"Paragraph {i}: " + "lorem ipsum dolor sit amet " * 30 for i in range(20)]
    answer = "\n\n".join(p.strip() for p in paragraphs)
    assert len(answer) > 3 * 4096
    llm.script(text_reply(answer, chunk_size=500))
    await telegram_app()

    telegram.push(private_message(ALICE, "write a lot"))
    await telegram.wait_for(lambda t: "\n\n".join(sent_texts(t)) == answer, within=10)

    parts = sent_texts(telegram)
    assert len(parts) >= 4
    assert all(len(part) <= 4096 for part in parts)
    assert all(part.startswith("Paragraph ") for part in parts)
    assert "\n\n".join(parts) == answer


async def test_markdown_telegram_cannot_parse_arrives_as_plain_text(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    answer = "Use **bold** here"
    llm.script(text_reply(answer))
    telegram.fail(
        "sendMessage",
        400,
        "Bad Request: can't parse entities: can't find end of bold entity at byte offset 4",
        when=lambda params: params.get("parse_mode") == "HTML",
    )
    await telegram_app()

    telegram.push(private_message(ALICE, "format it"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)

    refused, plain = telegram.calls_of("sendMessage")
    assert refused.params["parse_mode"] == "HTML"
    assert "parse_mode" not in plain.params and plain.params["text"] == answer


async def test_markdown_that_breaks_markdown_v2_still_renders_as_valid_html(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    # Unescaped MarkdownV2 specials, an unclosed bold, angle brackets and a code block.
    answer = "Costs 1.5€ (approx.) - see a_b_c, x < y & **unclosed\n\n```py\nif a<b: pass\n```"
    llm.script(text_reply(answer))
    await telegram_app()

    telegram.push(private_message(ALICE, "tricky"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    [sent] = telegram.calls_of("sendMessage")
    assert sent.params["parse_mode"] == "HTML"
    assert "x &lt; y &amp; **unclosed" in sent.params["text"]
    assert '<pre><code class="language-py">if a&lt;b: pass</code></pre>' in sent.params["text"]


async def test_a_redelivered_update_is_answered_once_also_after_a_restart(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory, tmp_path
) -> None:
    llm.set_default(text_reply("Hello!"))
    database = tmp_path / "shared.db"
    app = await telegram_app(database=database)
    update = private_message(ALICE, "hi")

    telegram.push(update, update_id=500)
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)
    telegram.push(update, update_id=500)
    await telegram.wait_for(lambda t: t.pending_updates == 0)
    await stop(app)

    await telegram_app(database=database)
    telegram.push(update, update_id=500)
    telegram.push(private_message(ALICE, "and now?"), update_id=501)
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 2)
    await asyncio.sleep(0.2)

    assert sent_texts(telegram) == ["Hello!", "Hello!"]
    assert [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "user"] == [
        "hi",
        "and now?",
    ]
    assert len(llm.requests) == 2


async def test_flood_control_waits_the_retry_after_and_delivers_once(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(text_reply("Patience pays."))
    telegram.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await telegram_app()

    telegram.push(private_message(ALICE, "quick!"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2, within=5)

    refused, delivered = telegram.calls_of("sendMessage")
    assert delivered.at - refused.at >= 0.95
    assert refused.params == delivered.params
    await asyncio.sleep(0.2)
    assert len(telegram.calls_of("sendMessage")) == 2


async def test_a_blocked_bot_drops_the_turn_and_keeps_serving(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm.set_default(text_reply("Hi"))
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    await telegram_app()

    with caplog.at_level(logging.WARNING):
        telegram.push(private_message(ALICE, "hello"))
        await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
        telegram.push(private_message(ALICE + 1, "hello too", name="Ann"))
        await telegram.wait_for(lambda t: len(sent_texts(t, ALICE + 1)) == 1)

    assert len(telegram.calls_of("sendMessage")) == 2
    assert any("unavailable" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


async def test_polling_survives_network_errors(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Still here."))
    telegram.fail("getUpdates", 502, "Bad Gateway", times=2)
    await telegram_app()

    telegram.push(private_message(ALICE, "are you there?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1, within=10)

    assert sent_texts(telegram) == ["Still here."]


async def test_commands_help_reset_and_tools(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("ok"))
    await telegram_app()

    telegram.push(private_message(ALICE, "first"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)
    for count, command in enumerate(("/help", "/tools", "/reset"), start=2):
        telegram.push(private_message(ALICE, command))
        await telegram.wait_for(lambda t, n=count: len(sent_texts(t)) == n)
    telegram.push(private_message(ALICE, "second"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 5)

    _, help_text, tools_text, reset_text, _ = sent_texts(telegram)
    assert "/reset" in help_text
    assert "get_current_time" in tools_text
    assert "new conversation" in reset_text
    assert len(llm.requests) == 2
    assert [m["role"] for m in llm.requests[1]["messages"]] == ["system", "user"]


async def test_a_proactive_message_goes_through_the_messenger(
    telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    app = await telegram_app()
    messenger = platform_of(app).messenger

    await messenger.send(ChatRef("telegram", "-100777", ChatKind.GROUP), "Reminder: *standup*", "9")

    [sent] = telegram.calls_of("sendMessage")
    assert sent.params["chat_id"] == -100777 and sent.params["message_thread_id"] == 9
    assert sent.params["text"] == "Reminder: <i>standup</i>"


async def test_a_non_text_message_in_private_gets_a_clear_answer(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app()
    update = private_message(ALICE, "")
    del update["message"]["text"]
    update["message"]["sticker_stand_in"] = True

    telegram.push(update)
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert "text" in sent_texts(telegram)[0] and llm.requests == []


async def test_turns_of_different_chats_run_concurrently(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Done.", delay=0.5))
    await telegram_app()

    started = asyncio.get_running_loop().time()
    for user in range(ALICE, ALICE + 4):
        telegram.push(private_message(user, "slow question"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 4)

    assert asyncio.get_running_loop().time() - started < 1.5


async def test_typing_shows_while_tools_run_after_text(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "UTC"}), text="Let me check."),
        text_reply("It is noon.", delay=0.3),  # time for the preview of the first round
    )
    await telegram_app(preview_delay=0)

    telegram.push(private_message(ALICE, "time?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    [draft] = [c for c in telegram.calls_of("sendMessageDraft") if c.params.get("text")][:1]
    assert "Let me check.".startswith(draft.params["text"])
    # One when the turn starts, one again once text has streamed and the tool runs (the
    # draft goes out in the background, so it may land just before or after).
    actions = telegram.calls_of("sendChatAction")
    assert len(actions) == 2
    assert {a.params["action"] for a in actions} == {"typing"}
    assert sent_texts(telegram) == ["Let me check.\n\nIt is noon."]


async def test_stopping_answers_open_confirmations_with_no(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    from tests.integrations.telegram.test_groups import LAUNCHED, launch

    LAUNCHED.clear()
    llm.script(tool_call_reply(("launch", {"name": "x"})), text_reply("Cancelled then."))
    app = await telegram_app(tools=[launch])
    telegram.push(private_message(ALICE, "launch x"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    started = asyncio.get_running_loop().time()
    await stop(app)

    assert asyncio.get_running_loop().time() - started < 3
    assert LAUNCHED == [] and sent_texts(telegram)[-1] == "Cancelled then."


async def test_memory_and_forget_commands(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(
        tool_call_reply(("remember", {"text": "I am vegetarian", "scope": "private"})),
        text_reply("I'll remember that."),
    )
    await telegram_app()
    telegram.push(private_message(ALICE, "Remember that I am vegetarian"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)
    commands = ("/memory", "/forget@parley_test_bot nonsense", "/forget all", "/memory")
    for count, command in enumerate(commands, start=2):
        telegram.push(private_message(ALICE, command))
        await telegram.wait_for(lambda t, n=count: len(sent_texts(t)) == n)

    _, listed, refused, forgot, empty = sent_texts(telegram)
    assert "What I remember about you:" in listed and "I am vegetarian" in listed
    assert "/forget followed by its number" in refused
    assert forgot == "Forgot 1 fact."
    assert "I don't remember anything about you" in empty
    assert len(llm.requests) == 2  # commands never reach the model


async def test_numbers_that_are_not_plain_numbers_get_a_clear_answer(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app()
    huge = "1234567890123456789012345"
    commands = ("/forget ²", f"/forget {huge}", "/tools revoke ²", f"/tools revoke {huge}")
    for count, command in enumerate(commands, start=1):
        telegram.push(private_message(ALICE, command))
        await telegram.wait_for(lambda t, n=count: len(sent_texts(t)) == n)

    forget_squared, forget_huge, revoke_squared, revoke_huge = sent_texts(telegram)
    assert "/forget followed by its number" in forget_squared
    assert "/forget followed by its number" in forget_huge
    assert revoke_squared == "You have no standing approval ²."
    assert revoke_huge == f"You have no standing approval {huge}."
    assert llm.requests == []
