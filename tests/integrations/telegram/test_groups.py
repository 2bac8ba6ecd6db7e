"""Groups and forum topics: who is answered, separate contexts, paced edits, buttons."""

from __future__ import annotations

import asyncio
import itertools
import json

from pydantic import BaseModel

from bot.domain import ToolContext
from bot.toolkit import tool
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    Call,
    FakeTelegramServer,
    callback_update,
    group_message,
)
from tests.integrations.telegram.conftest import AppFactory

GROUP = -100200
BOB, CAROL = 5001, 5002


def visible_calls(telegram: FakeTelegramServer) -> list:
    return [
        c
        for c in telegram.calls_of("sendMessage", "editMessageText")
        if c.params["chat_id"] == GROUP
    ]


async def test_unaddressed_group_messages_are_ignored_and_addressed_ones_answered(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Sure."))
    await telegram_app()

    telegram.push(group_message(GROUP, BOB, "lunch anyone?"))
    telegram.push(group_message(GROUP, BOB, "ask @someone_else"))
    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} what is 2+2?"))
    telegram.push(group_message(GROUP, CAROL, "and 3+3?", name="Carol", reply_to_bot=True))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)
    await telegram.wait_for(lambda t: t.pending_updates == 0)
    await asyncio.sleep(0.2)

    # A reply to Parley carries the answer it replies to, quoted (Parley's own words).
    asked = [r["messages"][-1]["content"] for r in llm.requests]
    assert sorted(text.rpartition("</context>\n\n")[2] for text in asked) == [
        "and 3+3?",
        "what is 2+2?",
    ]
    [quoting] = [text for text in asked if "<context>" in text]
    assert 'bot="true">\n> an earlier answer\n</message>' in quoting
    replies = telegram.calls_of("sendMessage")
    assert all(c.params["reply_parameters"]["message_id"] for c in replies)


async def test_a_group_command_addresses_the_bot(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app()

    telegram.push(group_message(GROUP, BOB, "/help@other_bot"))
    telegram.push(group_message(GROUP, BOB, f"/help@{BOT_USERNAME}"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
    await telegram.wait_for(lambda t: t.pending_updates == 0)
    await asyncio.sleep(0.1)

    [reply] = telegram.calls_of("sendMessage")
    assert "/reset" in reply.params["text"] and llm.requests == []


async def test_forum_topics_keep_separate_contexts(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.set_default(text_reply("Noted."))
    await telegram_app()
    mention = f"@{BOT_USERNAME}"

    for thread, text in ((11, "topic one"), (12, "topic two"), (11, "again one")):
        count = len(llm.requests) + 1
        telegram.push(group_message(GROUP, BOB, f"{mention} {text}", thread_id=thread))
        await telegram.wait_for(lambda t, n=count: len(t.calls_of("sendMessage")) == n)

    users = [[m["content"] for m in r["messages"] if m["role"] == "user"] for r in llm.requests]
    assert users == [["topic one"], ["topic two"], ["topic one", "again one"]]
    threads = [c.params["message_thread_id"] for c in telegram.calls_of("sendMessage")]
    assert threads == [11, 12, 11]


async def test_a_quick_answer_in_a_group_is_one_reply_without_edits(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(text_reply("Short **and** whole.", chunk_size=3))
    await telegram_app(preview_delay=2)

    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} quick one"))
    await telegram.wait_for(lambda t: len(visible_calls(t)) == 1)

    [reply] = visible_calls(telegram)
    assert reply.method == "sendMessage" and reply.params["text"] == "Short <b>and</b> whole."
    assert reply.params["reply_parameters"]["message_id"]
    assert telegram.calls_of("sendChatAction", "editMessageText") == []


async def test_streaming_edits_keep_at_least_the_interval_per_chat(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    answer = " ".join(f"w{i}" for i in range(60))
    # Two people in one group at once: their edits share the chat's pace.
    llm.set_default(text_reply(answer, chunk_size=5, chunk_delay=0.04))
    await telegram_app(edit_interval_seconds=1.0)

    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} talk"))
    telegram.push(group_message(GROUP, CAROL, f"@{BOT_USERNAME} talk too", name="Carol"))
    await telegram.wait_for(
        lambda t: [c.params["text"] for c in visible_calls(t)].count(answer) == 2, within=15
    )

    calls = visible_calls(telegram)
    assert len(telegram.calls_of("editMessageText")) >= 2
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.95, gaps
    edits = [(c.params["message_id"], c.params["text"]) for c in calls if "message_id" in c.params]
    assert len(edits) == len(set(edits))


class Target(BaseModel):
    name: str


LAUNCHED: list[str] = []


@tool(side_effect=True)
async def launch(params: Target, ctx: ToolContext) -> str:
    """Launch the named thing."""
    LAUNCHED.append(params.name)
    return f"launched {params.name}"


def in_chat_sends(telegram: FakeTelegramServer) -> list[Call]:
    return [
        c
        for c in telegram.calls_of("sendMessage")
        if "ephemeral_message_parameters" not in c.params
    ]


async def test_on_an_older_server_the_question_is_in_the_chat_and_only_the_asker_answers(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    LAUNCHED.clear()
    telegram.speak_bot_api_before_ephemeral_messages()
    llm.script(
        tool_call_reply(("launch", {"name": "rocket"})),
        text_reply("Launched."),
        tool_call_reply(("launch", {"name": "probe"})),
        text_reply("Launched too."),
    )
    await telegram_app(tools=[launch])

    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} launch the rocket"))
    await telegram.wait_for(lambda t: len(in_chat_sends(t)) == 1)
    [refused_ephemeral] = [
        c for c in telegram.calls_of("sendMessage") if "ephemeral_message_parameters" in c.params
    ]
    [question] = in_chat_sends(telegram)
    assert question.params["text"].startswith("Run launch\nname: rocket")
    buttons = question.params["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Approve once", "Always allow", "Deny"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)
    message_id = 5000  # the fake's first message id in a chat
    chat = {"id": GROUP, "type": "supergroup", "title": "Team"}

    telegram.push(callback_update(chat, message_id, CAROL, buttons[0]["callback_data"]))
    await telegram.wait_for(lambda t: len(t.calls_of("answerCallbackQuery")) == 1)
    [refusal] = telegram.calls_of("answerCallbackQuery")
    assert "not yours" in refusal.params["text"] and refusal.params["show_alert"] is True
    await asyncio.sleep(0.1)
    assert LAUNCHED == [] and len(llm.requests) == 1

    telegram.push(callback_update(chat, message_id, BOB, buttons[0]["callback_data"]))
    await telegram.wait_for(lambda t: len(in_chat_sends(t)) == 2)
    assert LAUNCHED == ["rocket"]
    edited = [c.params["text"] for c in telegram.calls_of("editMessageText")]
    assert any(text.endswith("Approved once.") for text in edited)
    await telegram.wait_for(lambda t: visible_calls(t)[-1].params["text"] == "Launched.")

    # The server's answer is remembered: the next question does not try ephemeral again.
    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} launch the probe"))
    await telegram.wait_for(lambda t: len(in_chat_sends(t)) == 3)
    ephemeral_tries = [
        c for c in telegram.calls_of("sendMessage") if "ephemeral_message_parameters" in c.params
    ]
    assert ephemeral_tries == [refused_ephemeral]


async def test_in_a_group_the_question_is_ephemeral_for_the_asker(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    LAUNCHED.clear()
    llm.script(
        tool_call_reply(("launch", {"name": "rocket"})),
        text_reply("Launched."),
        tool_call_reply(("launch", {"name": "again"})),
        text_reply("Launched again."),
    )
    await telegram_app(tools=[launch])
    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} launch the rocket"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 1)
    [question] = telegram.calls_of("sendMessage")
    options = question.params["ephemeral_message_parameters"]
    assert (json.loads(options) if isinstance(options, str) else options) == {
        "receiver_user_id": BOB
    }
    markup = question.params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    always = markup["inline_keyboard"][0][1]
    assert always["text"] == "Always allow"
    assert telegram.ephemeral_receiver(GROUP, 5000) == BOB

    chat = {"id": GROUP, "type": "supergroup", "title": "Team"}
    telegram.push(callback_update(chat, 5000, BOB, always["callback_data"], ephemeral=True))
    await telegram.wait_for(lambda t: len(t.calls_of("editEphemeralMessageText")) == 1)
    [closed] = telegram.calls_of("editEphemeralMessageText")
    assert "Always allowed" in closed.params["text"]
    await telegram.wait_for(lambda t: visible_calls(t)[-1].params["text"] == "Launched.")

    # Always allow: the next call runs without a question.
    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} launch again"))
    await telegram.wait_for(lambda t: visible_calls(t)[-1].params["text"] == "Launched again.")
    assert LAUNCHED == ["rocket", "again"]
    assert len(telegram.calls_of("editEphemeralMessageText")) == 1


async def test_an_unanswered_confirmation_times_out_as_no(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    LAUNCHED.clear()
    llm.script(tool_call_reply(("launch", {"name": "probe"})), text_reply("Not launched."))
    await telegram_app(tools=[launch], confirm_timeout=0.3)

    telegram.push(group_message(GROUP, BOB, f"@{BOT_USERNAME} launch the probe"))
    await telegram.wait_for(lambda t: len(t.calls_of("sendMessage")) == 2)

    assert LAUNCHED == []
    assert "did not confirm" in llm.requests[1]["messages"][-1]["content"]
    [closed] = telegram.calls_of("editEphemeralMessageText")
    assert "No answer in time" in closed.params["text"]
