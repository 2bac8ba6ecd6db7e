from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest

from bot.domain import (
    ChatKind,
    ChatMessage,
    ChatRef,
    IncomingMessage,
    Role,
    ToolCall,
    Usage,
    UserRef,
    VendorState,
)
from bot.storage import ConversationStore, Database, StoredMessage, UsageEntry, migrate
from tests.databases import database_url_for, sqlite_url

ALICE = UserRef("telegram", "42", "Alice")
BOB = UserRef("telegram", "43", "Bob")
GROUP = ChatRef("telegram", "-100", ChatKind.GROUP, "team")


def incoming(user: UserRef = ALICE, chat: ChatRef = GROUP, thread: str = "") -> IncomingMessage:
    return IncomingMessage(chat=chat, user=user, text="hi", thread_key=thread)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    async with database_url_for(request, tmp_path) as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConversationStore]:
    await migrate(database_url)
    database = Database(database_url)
    yield ConversationStore(database)
    await database.aclose()


async def test_migrate_is_idempotent_and_creates_every_table(database_url: str) -> None:
    await migrate(database_url)
    await migrate(database_url)
    database = Database(database_url)
    try:
        async with database.read() as session:
            connection = await session.connection()
            names = await connection.run_sync(
                lambda sync: set(__import__("sqlalchemy").inspect(sync).get_table_names())
            )
    finally:
        await database.aclose()
    assert {
        "users",
        "channels",
        "conversations",
        "messages",
        "usage",
        "processed_events",
        "alembic_version",
    } <= names


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    url = sqlite_url(tmp_path)
    await migrate(url)
    database = Database(url, sqlite_busy_timeout_ms=1234)
    try:
        async with database.read() as session:
            connection = await session.connection()
            journal = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    finally:
        await database.aclose()
    assert journal == "wal"
    assert timeout == 1234
    # WAL is a property of the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(tmp_path / "parley.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_same_user_chat_and_thread_reuse_one_conversation(
    store: ConversationStore,
) -> None:
    first = await store.open_conversation(incoming())
    again = await store.open_conversation(incoming())
    other_thread = await store.open_conversation(incoming(thread="topic-7"))
    other_user = await store.open_conversation(incoming(user=BOB))
    assert first == again
    assert (
        len({first.conversation_id, other_thread.conversation_id, other_user.conversation_id}) == 3
    )
    assert first.channel_id == other_user.channel_id
    assert first.timezone is None


async def test_concurrent_first_messages_create_one_conversation(store: ConversationStore) -> None:
    infos = await asyncio.gather(*(store.open_conversation(incoming()) for _ in range(10)))
    assert len({info.conversation_id for info in infos}) == 1


async def test_history_round_trips_tool_calls_and_keeps_order(store: ConversationStore) -> None:
    info = await store.open_conversation(incoming())
    call = ToolCall(
        "call_1", "get_current_time", {"timezone": "Asia/Tokyo"}, '{"timezone": "Asia/Tokyo"}'
    )
    broken = ToolCall("call_2", "get_current_time", None, "{not json", "invalid JSON")
    messages = [
        ChatMessage(Role.USER, "what time is it in Tokyo? 东京"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(call, broken)),
        ChatMessage(Role.TOOL, "12:00", tool_call_id="call_1", name="get_current_time"),
        ChatMessage(
            Role.TOOL, "bad args", tool_call_id="call_2", name="get_current_time", is_error=True
        ),
        ChatMessage(Role.ASSISTANT, "It is noon."),
    ]
    usage = UsageEntry(info.user_id, info.channel_id, info.conversation_id, "m", Usage(7, 3))
    await store.append(info.conversation_id, [StoredMessage(m, 5) for m in messages], usage=usage)
    history = await store.history(info.conversation_id)
    assert [stored.message for stored in history] == [
        messages[0],
        ChatMessage(
            Role.ASSISTANT,
            "",
            tool_calls=(
                call,
                ToolCall(
                    "call_2",
                    "get_current_time",
                    None,
                    "{not json",
                    history[1].message.tool_calls[1].arguments_error,
                ),
            ),
        ),
        *messages[2:],
    ]
    assert history[1].message.tool_calls[1].arguments_error.startswith("invalid JSON")
    assert all(stored.tokens == 5 for stored in history)


async def test_vendor_state_round_trips_with_its_assistant_message(
    store: ConversationStore,
) -> None:
    info = await store.open_conversation(incoming())
    state = VendorState("deepseek", {"reasoning_content": "思考: the user wants Paris."})
    call = ToolCall("call_1", "get_weather", {"place": "Paris"}, '{"place": "Paris"}')
    messages = [
        ChatMessage(Role.USER, "weather in Paris?"),
        ChatMessage(Role.ASSISTANT, "", tool_calls=(call,), vendor_state=state),
        ChatMessage(Role.TOOL, "sunny", tool_call_id="call_1", name="get_weather"),
        ChatMessage(Role.ASSISTANT, "Sunny."),
    ]
    await store.append(info.conversation_id, [StoredMessage(m, 5) for m in messages])
    history = [stored.message for stored in await store.history(info.conversation_id)]
    assert history == messages
    assert history[1].vendor_state == state
    assert history[3].vendor_state is None


async def test_history_returns_the_newest_messages_oldest_first(store: ConversationStore) -> None:
    info = await store.open_conversation(incoming())
    await store.append(
        info.conversation_id, [StoredMessage(ChatMessage(Role.USER, f"m{i}"), 1) for i in range(10)]
    )
    history = await store.history(info.conversation_id, limit=3)
    assert [stored.message.content for stored in history] == ["m7", "m8", "m9"]


async def test_reset_starts_a_new_conversation_and_keeps_the_old_one(
    store: ConversationStore,
) -> None:
    before = await store.open_conversation(incoming())
    await store.append(before.conversation_id, [StoredMessage(ChatMessage(Role.USER, "old"), 1)])
    assert await store.reset_conversation(incoming()) is True
    after = await store.open_conversation(incoming())
    assert after.conversation_id != before.conversation_id
    assert await store.history(after.conversation_id) == []
    assert [s.message.content for s in await store.history(before.conversation_id)] == ["old"]
    assert await store.reset_conversation(incoming(user=BOB)) is False


async def test_an_event_is_claimed_exactly_once_even_concurrently(store: ConversationStore) -> None:
    claims = await asyncio.gather(*(store.claim_event("slack", "A1", "T1:Ev1") for _ in range(20)))
    assert claims.count(True) == 1
    assert await store.claim_event("slack", "A1", "T1:Ev1") is False
    assert await store.claim_event("telegram", "A1", "T1:Ev1") is True
    # Another bot on the same database has ids of its own.
    assert await store.claim_event("slack", "A2", "T1:Ev1") is True


async def test_timezone_is_stored_per_user(database_url: str) -> None:
    await migrate(database_url)
    database = Database(database_url)
    try:
        await ConversationStore(database).set_timezone(ALICE, "Asia/Shanghai")
        # A fresh store (a restarted process) reads it back from the database.
        info = await ConversationStore(database).open_conversation(incoming())
    finally:
        await database.aclose()
    assert info.timezone == "Asia/Shanghai"


async def test_start_turn_returns_the_history_before_storing_what_the_user_said(
    store: ConversationStore,
) -> None:
    def said(text: str) -> StoredMessage:
        return StoredMessage(ChatMessage(Role.USER, text), 1)

    empty_info, empty = await store.start_turn(incoming(), said("m0"))
    assert empty == [] and empty_info == await store.open_conversation(incoming())
    await store.append(empty_info.conversation_id, [said(f"m{i}") for i in range(1, 5)])
    info, history = await store.start_turn(incoming(), said("m5"), limit=3)
    assert info == empty_info
    assert [stored.message.content for stored in history] == ["m2", "m3", "m4"]
    assert [s.message.content for s in await store.history(info.conversation_id, limit=2)] == [
        "m4",
        "m5",
    ]
    # After a reset the closed conversation's messages are no longer the open history.
    await store.reset_conversation(incoming())
    fresh, fresh_history = await store.start_turn(incoming(), said("new"))
    assert fresh.conversation_id != info.conversation_id and fresh_history == []
    assert [s.message.content for s in await store.history(fresh.conversation_id)] == ["new"]
