"""Memory users control: facts remembered on request, rolling summaries of long
conversations. The real engine, the real openai client against the scripted server,
real SQLite (and PostgreSQL for the storage rules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.app import Application
from bot.domain import (
    ChatKind,
    ChatMessage,
    ChatRef,
    IncomingMessage,
    MemoryScope,
    Role,
    ToolCall,
    UserRef,
)
from bot.errors import ToolError
from bot.storage import ConversationStore, Database, StoredMessage, migrate
from bot.storage.memory import MemoryStore, TurnMemory
from bot.turn.summaries import INSTRUCTIONS, older_half
from tests.apps import AppFactory
from tests.databases import fresh_postgres_database, sqlite_url
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface

ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
ALICE_DM = ChatRef("test", "dm-alice", ChatKind.DM)
ALICE_OTHER_DM = ChatRef("test", "dm-alice-2", ChatKind.DM)
BOB_DM = ChatRef("test", "dm-bob", ChatKind.DM)
GROUP = ChatRef("test", "group-1", ChatKind.GROUP, "Team")


def message(text: str, user: UserRef = ALICE, chat: ChatRef = ALICE_DM) -> IncomingMessage:
    return IncomingMessage(chat=chat, user=user, text=text)


def system_prompt(request: dict[str, Any]) -> str:
    first = request["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def is_summary_request(request: dict[str, Any]) -> bool:
    return system_prompt(request) == INSTRUCTIONS


async def remember_turn(
    app: Application, llm: ScriptedOpenAIServer, text: str, scope: str, chat: ChatRef = ALICE_DM
) -> None:
    llm.script(tool_call_reply(("remember", {"text": text, "scope": scope})), text_reply("Noted."))
    outcome = await app.engine.handle(message(f"remember: {text}", chat=chat), RecordingSurface())
    assert [r.is_error for r in outcome.tool_results] == [False], outcome.tool_results


# -- facts -----------------------------------------------------------------------------


async def test_a_remembered_fact_is_offered_after_a_reset_and_in_another_chat(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app()
    await remember_turn(app, llm, "I am vegetarian", "private")
    assert await app.desk.reset(message("/reset")) is True

    llm.script(text_reply("Try the tofu."))
    await app.engine.handle(message("what should I eat?"), RecordingSurface())
    llm.script(text_reply("Also here."))
    await app.engine.handle(message("and here?", chat=ALICE_OTHER_DM), RecordingSurface())

    for request in llm.requests[-2:]:
        assert "What the user asked you to remember" in system_prompt(request)
        assert "I am vegetarian" in system_prompt(request)
        # A new conversation: the fact is known, the old messages are not.
        assert [m["role"] for m in request["messages"]] == ["system", "user"]


async def test_facts_are_never_offered_to_another_user(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app()
    await remember_turn(app, llm, "My team is in Hangzhou", "everywhere")
    llm.script(text_reply("Hi Bob."))
    await app.engine.handle(message("hi", user=BOB, chat=BOB_DM), RecordingSurface())
    assert "Hangzhou" not in system_prompt(llm.requests[-1])
    assert await app.memory.facts_for(BOB, BOB_DM) == []


async def test_a_group_turn_shows_only_the_facts_shared_everywhere(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app()
    await remember_turn(app, llm, "I am vegetarian", "private")
    await remember_turn(app, llm, "My team is in Hangzhou", "everywhere")

    llm.script(text_reply("Hello team."))
    await app.engine.handle(message("hello", chat=GROUP), RecordingSurface())
    prompt = system_prompt(llm.requests[-1])
    assert "Hangzhou" in prompt and "vegetarian" not in prompt

    # recall in the group lists only the shared fact; in the DM both.
    llm.script(tool_call_reply(("recall", {"query": None})), text_reply("Listed."))
    outcome = await app.engine.handle(message("what do you know?", chat=GROUP), RecordingSurface())
    [result] = outcome.tool_results
    assert "Hangzhou" in result.content and "vegetarian" not in result.content
    assert "vegetarian" in await app.desk.memory_text(message("/memory"))
    in_group = await app.desk.memory_text(message("/memory", chat=GROUP))
    assert "Hangzhou" in in_group and "vegetarian" not in in_group


async def test_forget_by_tool_and_by_command(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app()
    await remember_turn(app, llm, "I am vegetarian", "private")
    await remember_turn(app, llm, "I like tea", "private")
    vegetarian, tea = await app.memory.facts_for(ALICE, ALICE_DM)

    llm.script(tool_call_reply(("forget", {"id": vegetarian.id, "all": False})), text_reply("Ok."))
    outcome = await app.engine.handle(message("forget that I'm vegetarian"), RecordingSurface())
    assert [r.content for r in outcome.tool_results] == ["Forgot 1 fact(s)."]
    llm.script(text_reply("Sure."))
    await app.engine.handle(message("hi"), RecordingSurface())
    prompt = system_prompt(llm.requests[-1])
    assert "vegetarian" not in prompt and "I like tea" in prompt

    # A group cannot forget (or see) a private fact; the DM can.
    group_reply = await app.desk.forget_text(message("/forget", chat=GROUP), str(tea.id))
    assert group_reply == f"There is no fact {tea.id} here; /memory lists them."
    assert await app.desk.forget_text(message("/forget"), "nonsense") == (
        "Say which fact to forget: /forget followed by its number, or /forget all."
    )
    assert await app.desk.forget_text(message("/forget"), "all") == "Forgot 1 fact."
    assert await app.memory.facts_for(ALICE, ALICE_DM) == []
    assert "I don't remember anything" in await app.desk.memory_text(message("/memory"))


async def test_the_model_is_told_when_memory_is_full_or_a_fact_too_long(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(bot={"memory_max_facts": 1, "memory_fact_max_chars": 20})
    await remember_turn(app, llm, "I am vegetarian", "private")
    llm.script(
        tool_call_reply(
            ("remember", {"text": "I like tea", "scope": "private"}),
            ("remember", {"text": "x" * 21, "scope": "private"}),
        ),
        text_reply("Memory is full."),
    )
    outcome = await app.engine.handle(message("remember two more"), RecordingSurface())
    full, long = outcome.tool_results
    assert full.is_error and "1 remembered facts, the most allowed" in full.content
    assert long.is_error and "at most 20 characters" in long.content
    assert [f.text for f in await app.memory.facts_for(ALICE, ALICE_DM)] == ["I am vegetarian"]


async def test_memory_tools_switched_off_in_a_channel_hide_the_facts_too(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app()
    await remember_turn(app, llm, "My team is in Hangzhou", "everywhere")
    channel_id = await app.store.channel_id(GROUP)
    for name in ("remember", "recall", "forget"):
        await app.admin.set_tool(
            actor="test:admin",
            channel_id=channel_id,
            place="test:group-1",
            tool=name,
            enabled=False,
            surface="test",
            is_admin=True,
        )
    llm.script(text_reply("Hello."))
    await app.engine.handle(message("hello", chat=GROUP), RecordingSurface())
    request = llm.requests[-1]
    assert "Hangzhou" not in system_prompt(request)
    offered = {t["function"]["name"] for t in request["tools"]}
    assert offered.isdisjoint({"remember", "recall", "forget"})


# -- summaries ---------------------------------------------------------------------------


async def long_conversation(app: Application, llm: ScriptedOpenAIServer, turns: int) -> None:
    """`turns` long exchanges; the first says where the user lives. Each summary the
    engine asks for is answered by the scripted default."""
    for i in range(turns):
        fact = "I live in Hangzhou and my cat is called Mochi. " if i == 0 else ""
        llm.script(text_reply(f"answer {i} " + "words " * 40))
        text = f"question {i} {fact}" + "padding " * 40
        await app.engine.handle(message(text), RecordingSurface())
        await app.summariser.drain(10)


async def test_a_conversation_longer_than_the_budget_keeps_early_facts_through_a_summary(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(bot={"context_tokens": 600})
    llm.set_default(
        text_reply("Summary: the user lives in Hangzhou; their cat is Mochi.", usage=(50, 20))
    )
    await long_conversation(app, llm, 8)
    llm.script(text_reply("Your cat is Mochi."))
    await app.engine.handle(message("what is my cat called?"), RecordingSurface())

    summaries = [r for r in llm.requests if is_summary_request(r)]
    assert summaries, "the overflowing conversation was never summarised"
    # The first summary read the first question, with the fact, as a transcript.
    assert "User: question 0 I live in Hangzhou" in summaries[0]["messages"][1]["content"]
    assert not summaries[0].get("tools")  # a summary is text only: no tools offered
    last = llm.requests[-1]
    assert not is_summary_request(last)
    assert "their cat is Mochi" in system_prompt(last)
    contents = [m["content"] for m in last["messages"][1:]]
    assert not any(c.startswith("question 0 ") for c in contents)
    assert contents[-1] == "what is my cat called?"
    assert last["messages"][1]["role"] == "user"
    # The summary calls are paid for: their usage is the user's.
    info = await app.store.open_conversation(message("x"))
    used = await app.admin_store.user_usage([info.user_id], datetime(2000, 1, 1, tzinfo=UTC))
    assert used[info.user_id] >= 70 * len(summaries)


async def test_a_summary_cut_at_the_length_limit_is_never_stored(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(bot={"context_tokens": 600})
    llm.set_default(text_reply("Summary: the user lives in Hangz", finish_reason="length"))
    await long_conversation(app, llm, 8)
    assert any(is_summary_request(r) for r in llm.requests)
    llm.script(text_reply("Noted."))
    await app.engine.handle(message("and?"), RecordingSurface())
    last = llm.requests[-1]
    assert not is_summary_request(last)
    assert "Hangz" not in system_prompt(last)  # no half summary in the prompt


async def test_with_summaries_off_the_older_part_simply_falls_out(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(bot={"context_tokens": 600, "summaries": False})
    await long_conversation(app, llm, 8)
    assert not any(is_summary_request(r) for r in llm.requests)
    assert "summary" not in system_prompt(llm.requests[-1]).lower()


async def test_forgetting_a_fact_empties_the_summaries_that_could_hold_it(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(bot={"context_tokens": 600})
    llm.set_default(text_reply("Summary: the user lives in Hangzhou."))
    await remember_turn(app, llm, "I live in Hangzhou", "private")
    await long_conversation(app, llm, 8)
    info = await app.store.open_conversation(message("x"))
    memory = await turn_memory(app, info.user_id, info.conversation_id)
    assert memory.summary is not None and "Hangzhou" in memory.summary.text

    assert await app.desk.forget_text(message("/forget"), "all") == "Forgot 1 fact."
    llm.script(text_reply("Fine."))
    await app.engine.handle(message("hello again"), RecordingSurface())
    await app.summariser.drain(10)
    prompt = system_prompt(llm.requests[-1])
    assert "Hangzhou" not in prompt
    # The history before the forget is never summarised again.
    after = await turn_memory(app, info.user_id, info.conversation_id)
    assert after.summary is not None and after.summary.text == ""
    assert after.summary.through_message_id >= memory.summary.through_message_id


async def turn_memory(app: Application, user_id: int, conversation_id: int) -> TurnMemory:
    """What a turn in ALICE_DM reads of memory, read the way a turn reads it."""
    read = app.memory.reader(user_id, ALICE_DM, facts=True, summary=True)
    return await app.database.run(lambda connection: read(connection, conversation_id), write=False)


def stored(role: Role, tokens: int, number: int, calls: int = 0) -> StoredMessage:
    tool_calls = tuple(ToolCall(f"c{number}-{i}", "echo", {}) for i in range(calls))
    chat = ChatMessage(role, f"m{number}", tool_calls=tool_calls)
    if role is Role.TOOL:
        chat = ChatMessage(role, f"m{number}", tool_call_id=f"c{number}", name="echo")
    return StoredMessage(chat, tokens, number)


def test_the_summarised_part_never_separates_a_call_from_its_results() -> None:
    history = [
        stored(Role.USER, 100, 1),
        stored(Role.ASSISTANT, 100, 2, calls=2),
        stored(Role.TOOL, 100, 3),
        stored(Role.TOOL, 100, 4),
        stored(Role.ASSISTANT, 100, 5),
        stored(Role.USER, 100, 6),
        stored(Role.ASSISTANT, 100, 7),
    ]
    # Half of 700 is 350: dropping 1-2 would leave 500; the cut moves past the results
    # and the final assistant message to the next user message.
    part = older_half(history, 700)
    assert [s.id for s in part] == [1, 2, 3, 4, 5]
    assert older_half(history[:1], 10_000) == []


# -- storage, on both databases --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def memory_store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[MemoryStore]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        await migrate(url)
        database = Database(url)
        yield MemoryStore(database, ConversationStore(database), max_facts=3, max_chars=50)
        await database.aclose()
        return
    async with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        await migrate(url)
        database = Database(url)
        yield MemoryStore(database, ConversationStore(database), max_facts=3, max_chars=50)
        await database.aclose()


async def test_facts_scopes_limits_and_erasing_a_user(memory_store: MemoryStore) -> None:
    private = await memory_store.remember(
        ALICE, ALICE_DM, "  I am   vegetarian ", MemoryScope.PRIVATE
    )
    assert private.text == "I am vegetarian"
    await memory_store.remember(ALICE, GROUP, "Team in Hangzhou", MemoryScope.EVERYWHERE)
    await memory_store.remember(BOB, BOB_DM, "Bob likes jazz", MemoryScope.PRIVATE)
    assert [f.text for f in await memory_store.facts_for(ALICE, ALICE_DM)] == [
        "I am vegetarian",
        "Team in Hangzhou",
    ]
    assert [f.text for f in await memory_store.facts_for(ALICE, GROUP)] == ["Team in Hangzhou"]
    await memory_store.remember(ALICE, ALICE_DM, "Third", MemoryScope.PRIVATE)
    with pytest.raises(ToolError, match="3 remembered facts"):
        await memory_store.remember(ALICE, ALICE_DM, "Fourth", MemoryScope.PRIVATE)
    with pytest.raises(ToolError, match="at most 50 characters"):
        await memory_store.remember(BOB, BOB_DM, "x" * 51, MemoryScope.PRIVATE)

    store = ConversationStore(memory_store.db)
    alice_id = await store.user_id_of(ALICE)
    info, _ = await store.start_turn(message("hi"), StoredMessage(ChatMessage(Role.USER, "hi"), 1))
    assert await memory_store.save_summary(info.conversation_id, 5, "older", 1) is True
    assert await memory_store.save_summary(info.conversation_id, 4, "stale", 1) is False
    erased = await memory_store.erase_user(alice_id)
    assert (erased.facts, erased.summaries, erased.messages) == (3, 1, 1)
    assert await memory_store.facts_for(ALICE, ALICE_DM) == []
    assert [f.text for f in await memory_store.facts_for(BOB, BOB_DM)] == ["Bob likes jazz"]
