"""Repositories: the only code that writes SQL for the engine.

`ConversationStore` resolves who and where a message comes from, loads and appends
history, records usage and claims platform events for deduplication. User and channel
ids never change once created, so they are cached in process; conversations are not
(a `/reset` on another replica must be seen at once).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import ChatMessage, ChatRef, IncomingMessage, Role, ToolCall, Usage, UserRef
from bot.storage.database import Database
from bot.storage.models import (
    Channel,
    Conversation,
    Message,
    ProcessedEvent,
    UsageRecord,
    User,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """Where a turn's history lives, and the user's timezone (None: use the default)."""

    user_id: int
    channel_id: int
    conversation_id: int
    timezone: str | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: ChatMessage
    tokens: int


class ConversationStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._user_ids: dict[tuple[str, str], tuple[int, str | None]] = {}
        self._channel_ids: dict[tuple[str, str], int] = {}

    # -- across replicas -----------------------------------------------------------------

    @asynccontextmanager
    async def conversation_lock(self, key: Hashable) -> AsyncIterator[None]:
        """Hold the database lock of one conversation for a turn: on PostgreSQL a
        transaction-scoped advisory lock, so turns of one conversation never interleave
        across replicas (within a process the engine's own lock already serialises them).
        SQLite serves one process: nothing to do. The lock lives on a connection of its own
        pool, so turns holding locks never starve the turns' queries of connections."""
        if self.db.is_sqlite:
            yield
            return
        async with self.db.lock_engine().connect() as connection, connection.begin():
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_number(key)}
            )
            yield  # commit (or rollback) at the end releases the lock

    # -- who and where -----------------------------------------------------------------

    async def open_conversation(self, message: IncomingMessage) -> ConversationInfo:
        """The user's open conversation in this chat and thread, created if needed."""
        user_id, timezone = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        conversation_id = await self._open_conversation_id(user_id, channel_id, message.thread_key)
        return ConversationInfo(user_id, channel_id, conversation_id, timezone)

    async def reset_conversation(self, message: IncomingMessage) -> bool:
        """Close the open conversation (kept for the record). True if one was open."""
        user_id, _ = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        async with self.db.write() as session:
            result = await session.exec(
                update(Conversation)
                .where(
                    Conversation.user_id == user_id,  # type: ignore[arg-type]
                    Conversation.channel_id == channel_id,  # type: ignore[arg-type]
                    Conversation.thread_key == message.thread_key,  # type: ignore[arg-type]
                    Conversation.closed_at.is_(None),  # type: ignore[union-attr]
                )
                .values(closed_at=utcnow())
            )
        return bool(result.rowcount)

    async def channel_id(self, chat: ChatRef) -> int:
        """The stored id of `chat`, created if needed."""
        return await self._channel_id(chat)

    async def has_thread(self, chat: ChatRef, thread_key: str) -> bool:
        """Whether any conversation (any user's, open or closed) lives in this thread."""
        query = (
            select(Conversation.id)
            .join(Channel, Channel.id == Conversation.channel_id)  # type: ignore[arg-type]
            .where(
                Channel.platform == chat.platform,
                Channel.platform_chat_id == chat.platform_chat_id,
                Conversation.thread_key == thread_key,
            )
            .limit(1)
        )
        async with self.db.read() as session:
            return (await session.exec(query)).first() is not None

    async def ids_of(self, user: UserRef, chat: ChatRef) -> tuple[int, int]:
        """The stored ids of a user and a chat, created if needed."""
        user_id, _ = await self._user_id(user)
        return user_id, await self._channel_id(chat)

    async def user_id_of(self, user: UserRef) -> int:
        user_id, _ = await self._user_id(user)
        return user_id

    async def timezone_of(self, user: UserRef) -> str | None:
        _, timezone = await self._user_id(user)
        return timezone

    async def set_timezone(self, user: UserRef, timezone: str) -> None:
        user_id, _ = await self._user_id(user)
        async with self.db.write() as session:
            await session.exec(update(User).where(User.id == user_id).values(timezone=timezone))  # type: ignore[arg-type]
        self._user_ids[(user.platform, user.platform_user_id)] = (user_id, timezone)

    async def _user_id(self, user: UserRef) -> tuple[int, str | None]:
        key = (user.platform, user.platform_user_id)
        cached = self._user_ids.get(key)
        if cached is not None:
            return cached
        values = {
            "platform": user.platform,
            "platform_user_id": user.platform_user_id,
            "display_name": user.display_name,
            "created_at": utcnow(),
        }
        async with self.db.write() as session:
            await _insert_ignore(session, User, values)
            row = (
                await session.exec(
                    select(User.id, User.timezone).where(
                        User.platform == user.platform,
                        User.platform_user_id == user.platform_user_id,
                    )
                )
            ).one()
        user_id, timezone = int(row[0]), row[1]  # type: ignore[arg-type]
        self._user_ids[key] = (user_id, timezone)
        return user_id, timezone

    async def _channel_id(self, chat: ChatRef) -> int:
        key = (chat.platform, chat.platform_chat_id)
        cached = self._channel_ids.get(key)
        if cached is not None:
            return cached
        values = {
            "platform": chat.platform,
            "platform_chat_id": chat.platform_chat_id,
            "kind": str(chat.kind),
            "title": chat.title,
            "created_at": utcnow(),
        }
        async with self.db.write() as session:
            await _insert_ignore(session, Channel, values)
            channel_id = (
                await session.exec(
                    select(Channel.id).where(
                        Channel.platform == chat.platform,
                        Channel.platform_chat_id == chat.platform_chat_id,
                    )
                )
            ).one()
        self._channel_ids[key] = channel_id  # type: ignore[assignment]
        return channel_id  # type: ignore[return-value]

    async def _open_conversation_id(self, user_id: int, channel_id: int, thread_key: str) -> int:
        query = select(Conversation.id).where(
            Conversation.user_id == user_id,
            Conversation.channel_id == channel_id,
            Conversation.thread_key == thread_key,
            Conversation.closed_at.is_(None),  # type: ignore[union-attr]
        )
        async with self.db.read() as session:
            found = (await session.exec(query)).first()
        if found is not None:
            return found
        async with self.db.write() as session:
            # The partial unique index makes a concurrent creation a no-op, not a duplicate.
            await _insert_ignore(
                session,
                Conversation,
                {
                    "user_id": user_id,
                    "channel_id": channel_id,
                    "thread_key": thread_key,
                    "created_at": utcnow(),
                },
                index_where="closed_at IS NULL",
                conflict_columns=("user_id", "channel_id", "thread_key"),
            )
            return (await session.exec(query)).one()  # type: ignore[return-value]

    # -- history -----------------------------------------------------------------------

    async def open_with_history(
        self, message: IncomingMessage, *, limit: int = 200
    ) -> tuple[ConversationInfo, list[StoredMessage]]:
        """`open_conversation` and `history` in one query on the hot path: the newest
        messages joined to the open conversation also name it. Only a new or empty
        conversation takes the slower lookup-or-create path."""
        user_id, timezone = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        columns = Message.__table__.c  # type: ignore[attr-defined]
        conversation_table = Conversation.__table__  # type: ignore[attr-defined]
        conversations = conversation_table.c
        query = (
            sa_select(
                columns.conversation_id,
                columns.role,
                columns.content,
                columns.tool_calls,
                columns.tool_call_id,
                columns.name,
                columns.is_error,
                columns.tokens,
            )
            .join(conversation_table, conversations.id == columns.conversation_id)
            .where(
                conversations.user_id == user_id,
                conversations.channel_id == channel_id,
                conversations.thread_key == message.thread_key,
                conversations.closed_at.is_(None),
            )
            .order_by(columns.id.desc())
            .limit(limit)
        )
        async with self.db.read() as session:
            rows = list((await session.exec(query)).all())  # type: ignore[call-overload]
        if not rows:
            conversation_id = await self._open_conversation_id(
                user_id, channel_id, message.thread_key
            )
            return ConversationInfo(user_id, channel_id, conversation_id, timezone), []
        rows.reverse()
        info = ConversationInfo(user_id, channel_id, rows[0].conversation_id, timezone)
        return info, [StoredMessage(to_chat_message(row), row.tokens) for row in rows]

    async def history(self, conversation_id: int, *, limit: int = 200) -> list[StoredMessage]:
        """The newest `limit` messages, oldest first."""
        # Plain rows, not ORM objects: this runs on every turn (docs/benchmarks.md).
        columns = Message.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(
                columns.role,
                columns.content,
                columns.tool_calls,
                columns.tool_call_id,
                columns.name,
                columns.is_error,
                columns.tokens,
            )
            .where(columns.conversation_id == conversation_id)
            .order_by(columns.id.desc())
            .limit(limit)
        )
        async with self.db.read() as session:
            rows = list((await session.exec(query)).all())  # type: ignore[call-overload]
        rows.reverse()
        return [StoredMessage(to_chat_message(row), row.tokens) for row in rows]

    async def append(
        self,
        conversation_id: int,
        messages: Sequence[StoredMessage],
        *,
        usage: UsageEntry | None = None,
    ) -> None:
        """Add messages (and the usage of the call that made them) in one transaction."""
        now = utcnow()
        rows = [to_row(conversation_id, stored, now) for stored in messages]
        async with self.db.write() as session:
            if rows:
                await session.exec(insert(Message.__table__), params=rows)  # type: ignore[attr-defined]
            if usage is not None:
                session.add(usage.to_row(now))

    async def record_usage(self, usage: UsageEntry) -> None:
        async with self.db.write() as session:
            session.add(usage.to_row(utcnow()))

    async def tokens_used(
        self, *, user_id: int | None = None, channel_id: int | None = None
    ) -> int:
        query = select(
            func.coalesce(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens), 0)
        )
        if user_id is not None:
            query = query.where(UsageRecord.user_id == user_id)
        if channel_id is not None:
            query = query.where(UsageRecord.channel_id == channel_id)
        async with self.db.read() as session:
            return int((await session.exec(query)).one())

    # -- deduplication -----------------------------------------------------------------

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """True the first time an event id is seen, False for every re-delivery."""
        async with self.db.write() as session:
            inserted = await _insert_ignore(
                session,
                ProcessedEvent,
                {"platform": platform, "event_id": event_id, "created_at": utcnow()},
            )
        return inserted


@dataclass(frozen=True, slots=True)
class UsageEntry:
    user_id: int
    channel_id: int
    conversation_id: int | None
    model: str
    usage: Usage

    def to_row(self, now: Any) -> UsageRecord:
        return UsageRecord(
            user_id=self.user_id,
            channel_id=self.channel_id,
            conversation_id=self.conversation_id,
            model=self.model,
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens,
            created_at=now,
        )


def to_row(conversation_id: int, stored: StoredMessage, now: Any) -> dict[str, Any]:
    """The `messages` row of a stored message, as column values."""
    message = stored.message
    calls = [
        {"id": call.id, "name": call.name, "arguments": _arguments_text(call)}
        for call in message.tool_calls
    ]
    return {
        "conversation_id": conversation_id,
        "role": str(message.role),
        "content": message.content,
        "tool_calls": calls or None,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "is_error": message.is_error,
        "tokens": stored.tokens,
        "created_at": now,
    }


def to_chat_message(row: Any) -> ChatMessage:
    """A `messages` row (ORM object or plain row) as a vendor-neutral message."""
    calls = tuple(_to_tool_call(raw) for raw in row.tool_calls or ())
    return ChatMessage(
        role=Role(row.role),
        content=row.content,
        tool_calls=calls,
        tool_call_id=row.tool_call_id,
        name=row.name,
        is_error=row.is_error,
    )


def _arguments_text(call: ToolCall) -> str:
    # The model's own text is kept verbatim; a call built in code is serialised.
    if call.raw_arguments or call.arguments is None:
        return call.raw_arguments
    return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))


def _to_tool_call(raw: dict[str, Any]) -> ToolCall:
    text = raw.get("arguments") or ""
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        return ToolCall(raw["id"], raw["name"], None, text, f"invalid JSON: {exc.msg}")
    if not isinstance(parsed, dict):
        return ToolCall(raw["id"], raw["name"], None, text, "arguments are not a JSON object")
    return ToolCall(raw["id"], raw["name"], parsed, text)


async def _insert_ignore(
    session: AsyncSession,
    model: Any,
    values: dict[str, Any],
    *,
    conflict_columns: Sequence[str] | None = None,
    index_where: str | None = None,
) -> bool:
    """`INSERT … ON CONFLICT DO NOTHING` on SQLite and PostgreSQL; True if a row went in."""
    table: Table = model.__table__
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    if conflict_columns is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=list(conflict_columns),
            index_where=text(index_where) if index_where else None,
        )
    else:
        statement = statement.on_conflict_do_nothing()
    result = await session.exec(statement)
    return bool(result.rowcount)


def lock_number(key: Hashable) -> int:
    """A stable signed 64-bit number for an advisory lock (the same in every replica)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
