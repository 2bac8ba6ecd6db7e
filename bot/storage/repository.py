"""Repositories: the only code that writes SQL for the engine.

`ConversationStore` resolves who and where a message comes from, loads and appends
history, records usage and claims platform events for deduplication. User and channel
ids never change once created, so they are cached in process; conversations are not
(a `/reset` on another replica must be seen at once). Every method is one unit of work
(`Database.run`): a turn makes three, claim, `start_turn` and the final `append`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam, delete, insert, text, tuple_, update
from sqlalchemy import select as sa_select

from bot.domain import ChatRef, IncomingMessage, UserRef
from bot.storage.database import Database
from bot.storage.models import (
    Channel,
    Conversation,
    Message,
    ProcessedEvent,
    Turn,
    UsageRecord,
    User,
    utcnow,
)
from bot.storage.rows import StoredMessage as StoredMessage
from bot.storage.rows import UsageEntry as UsageEntry
from bot.storage.rows import arranged, insert_ignore, to_chat_message, to_row

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """Where a turn's history lives, and the user's timezone (None: use the default)."""

    user_id: int
    channel_id: int
    conversation_id: int
    timezone: str | None


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
        connection = await self.db.lock_engine().connect()
        try:
            transaction = await connection.begin()
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_number(key)}
            )
            try:
                yield
            finally:
                # The end of the transaction releases the lock; a connection the database
                # lost has released it already, and the turn, answered maybe, must not
                # fail for that.
                try:
                    await transaction.commit()
                except Exception as exc:
                    log.warning("conversation lock: ending its transaction failed (%s)", exc)
        finally:
            try:
                await connection.close()
            except Exception as exc:
                log.warning("conversation lock: closing its connection failed (%s)", exc)

    # -- who and where -----------------------------------------------------------------

    async def open_conversation(self, message: IncomingMessage) -> ConversationInfo:
        """The user's open conversation in this chat and thread, created if needed."""
        user_id, timezone = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        conversation_id = await self.db.run(
            lambda connection: _open_conversation_id(
                connection, user_id, channel_id, message.thread_key
            )
        )
        return ConversationInfo(user_id, channel_id, conversation_id, timezone)

    async def reset_conversation(self, message: IncomingMessage) -> bool:
        """Close the open conversation (kept for the record). True if one was open."""
        user_id, _ = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        values = {
            "user": user_id,
            "channel": channel_id,
            "thread": message.thread_key,
            "closed_at": utcnow(),
        }
        closed = await self.db.run(lambda connection: connection.execute(_CLOSE, values).rowcount)
        return bool(closed)

    async def channel_id(self, chat: ChatRef) -> int:
        """The stored id of `chat`, created if needed."""
        return await self._channel_id(chat)

    async def has_thread(self, chat: ChatRef, thread_key: str) -> bool:
        """Whether any conversation (any user's, open or closed) lives in this thread."""
        values = {
            "platform": chat.platform,
            "platform_chat_id": chat.platform_chat_id,
            "thread_key": thread_key,
        }
        found = await self.db.run(
            lambda connection: connection.execute(_THREAD_EXISTS, values).first(), write=False
        )
        return found is not None

    async def ids_of(self, user: UserRef, chat: ChatRef) -> tuple[int, int]:
        """The stored ids of a user and a chat, created if needed."""
        user_id, _ = await self._user_id(user)
        return user_id, await self._channel_id(chat)

    async def user_id_of(self, user: UserRef) -> int:
        user_id, _ = await self._user_id(user)
        return user_id

    async def set_timezone(self, user: UserRef, timezone: str) -> None:
        user_id, _ = await self._user_id(user)
        await self.db.run(
            lambda connection: connection.execute(
                _SET_TIMEZONE, {"user": user_id, "timezone": timezone}
            )
        )
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

        def work(connection: Connection) -> tuple[int, str | None]:
            insert_ignore(connection, _USERS, values)
            row = connection.execute(_USER_ID, values).one()
            return int(row.id), row.timezone

        self._user_ids[key] = found = await self.db.run(work)
        return found

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

        def work(connection: Connection) -> int:
            insert_ignore(connection, _CHANNELS, values)
            return int(connection.execute(_CHANNEL_ID, values).scalar_one())

        self._channel_ids[key] = channel_id = await self.db.run(work)
        return channel_id

    # -- history -----------------------------------------------------------------------

    async def start_turn(
        self, message: IncomingMessage, said: StoredMessage, *, limit: int = 200
    ) -> tuple[ConversationInfo, list[StoredMessage]]:
        """A turn's one trip to the database before the model: the user's open
        conversation here (created if needed), its newest `limit` messages (oldest first),
        and `said` stored after them, all in one transaction."""
        info, history, _own, _extra = await self.begin_turn(message, said, limit=limit)
        return info, history

    async def begin_turn(
        self,
        message: IncomingMessage,
        said: StoredMessage,
        *,
        turn_id: int | None = None,
        resumed: bool = False,
        limit: int = 200,
        also: Callable[[Connection, int], T] | None = None,
    ) -> tuple[ConversationInfo, list[StoredMessage], list[StoredMessage], T | None]:
        """`start_turn` for a durable turn (`turn_id`, a `turns` row): the turn is marked
        running in the same transaction, and a `resumed` turn whose question is stored
        already reuses it: the third list is what the turn stored before (its question
        and finished tool rounds, in order), empty when `said` was stored now. The
        fourth is `also(connection, conversation_id)`, read in the same transaction
        (what else the turn needs, e.g. its memory): still one trip to the database.

        History keeps each durable turn's messages together and leaves out questions of
        other durable turns that have no answer (an interrupted turn not resumed yet, a
        turn that failed before the model answered): the model never reads a stale
        question as a new one."""
        user_id, timezone = await self._user_id(message.user)
        channel_id = await self._channel_id(message.chat)
        where = {
            "user": user_id,
            "channel": channel_id,
            "thread": message.thread_key,
            "limit": limit,
        }

        def work(connection: Connection) -> tuple[int, list[Any], list[Any], T | None]:
            own: list[Any] = []
            if resumed and turn_id is not None:
                own = list(connection.execute(_TURN_MESSAGES, {"turn": turn_id}))
            # The newest messages joined to the open conversation also name it; only a
            # new or empty conversation takes the lookup-or-create path.
            rows = list(connection.execute(_OPEN_HISTORY, where))
            if own and own[0].role == "user":
                conversation_id = own[0].conversation_id
            else:
                own = []
                conversation_id = (
                    rows[0].conversation_id
                    if rows
                    else _open_conversation_id(connection, user_id, channel_id, message.thread_key)
                )
                connection.execute(
                    _INSERT_MESSAGE, [to_row(conversation_id, said, utcnow(), turn_id)]
                )
            if turn_id is not None:
                connection.execute(
                    _TURN_RUNNING, {"turn": turn_id, "new_state": "running", "now": utcnow()}
                )
            extra = also(connection, conversation_id) if also is not None else None
            return conversation_id, rows, own, extra

        conversation_id, rows, own, extra = await self.db.run(work)
        rows.reverse()
        info = ConversationInfo(user_id, channel_id, conversation_id, timezone)
        history = [
            StoredMessage(to_chat_message(row), row.tokens, row.id)
            for row in arranged(rows, current_turn=turn_id)
        ]
        mine = [StoredMessage(to_chat_message(row), row.tokens, row.id) for row in own]
        return info, history, mine, extra

    async def history(self, conversation_id: int, *, limit: int = 200) -> list[StoredMessage]:
        """The newest `limit` messages, oldest first."""
        values = {"conversation_id": conversation_id, "limit": limit}
        rows = await self.db.run(
            lambda connection: list(connection.execute(_HISTORY, values)), write=False
        )
        rows.reverse()
        return [StoredMessage(to_chat_message(row), row.tokens, row.id) for row in rows]

    async def append(
        self,
        conversation_id: int,
        messages: Sequence[StoredMessage],
        *,
        usage: UsageEntry | None = None,
        turn_id: int | None = None,
    ) -> None:
        """Add messages (and the usage of the call that made them) in one transaction;
        `turn_id`: the durable turn they belong to."""
        now = utcnow()
        rows = [to_row(conversation_id, stored, now, turn_id) for stored in messages]

        def work(connection: Connection) -> None:
            if rows:
                connection.execute(_INSERT_MESSAGE, rows)
            if usage is not None:
                connection.execute(_INSERT_USAGE, [usage.to_row(now)])

        await self.db.run(work)

    async def record_usage(self, usage: UsageEntry) -> None:
        row = usage.to_row(utcnow())
        await self.db.run(lambda connection: connection.execute(_INSERT_USAGE, [row]))

    # -- deduplication -----------------------------------------------------------------

    async def claim_event(self, platform: str, bot: str, event_id: str) -> bool:
        """True the first time `bot` sees an event id, False for every re-delivery.
        (`bot`: the receiving bot, so two bots on one database never collide.)"""
        values = {"platform": platform, "bot": bot, "event_id": event_id, "created_at": utcnow()}
        return await self.db.run(
            lambda connection: insert_ignore(connection, _PROCESSED_EVENTS, values)
        )

    async def prune_events(self, older_than: datetime, *, batch: int = 5000) -> int:
        """Forget claims made before `older_than`; how many went. In batches, each its own
        transaction, so a first prune of a large table never holds the writer for long."""
        total = 0
        while True:
            removed = await self.db.run(
                lambda connection: (
                    connection.execute(
                        _PRUNE_EVENTS, {"before": older_than, "batch": batch}
                    ).rowcount
                )
            )
            total += removed
            if removed < batch:
                return total


def _open_conversation_id(
    connection: Connection, user_id: int, channel_id: int, thread_key: str
) -> int:
    where = {"user": user_id, "channel": channel_id, "thread": thread_key}
    found = connection.execute(_OPEN_CONVERSATION, where).scalar()
    if found is not None:
        return int(found)
    # The partial unique index makes a concurrent creation a no-op, not a duplicate.
    insert_ignore(
        connection,
        _CONVERSATIONS,
        {
            "user_id": user_id,
            "channel_id": channel_id,
            "thread_key": thread_key,
            "created_at": utcnow(),
        },
        conflict_columns=("user_id", "channel_id", "thread_key"),
        index_where="closed_at IS NULL",
    )
    return int(connection.execute(_OPEN_CONVERSATION, where).scalar_one())


# The statements of the hot path, built once: SQLAlchemy then finds their compiled form
# in its cache without rebuilding them per call.
_USERS: Table = User.__table__  # type: ignore[attr-defined]
_CHANNELS: Table = Channel.__table__  # type: ignore[attr-defined]
_CONVERSATIONS: Table = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
_PROCESSED_EVENTS: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]

_PRUNE_EVENTS = delete(_PROCESSED_EVENTS).where(
    tuple_(_PROCESSED_EVENTS.c.platform, _PROCESSED_EVENTS.c.bot, _PROCESSED_EVENTS.c.event_id).in_(
        sa_select(
            _PROCESSED_EVENTS.c.platform, _PROCESSED_EVENTS.c.bot, _PROCESSED_EVENTS.c.event_id
        )
        .where(_PROCESSED_EVENTS.c.created_at < bindparam("before"))
        .limit(bindparam("batch"))
    )
)

_USER_ID = sa_select(_USERS.c.id, _USERS.c.timezone).where(
    _USERS.c.platform == bindparam("platform"),
    _USERS.c.platform_user_id == bindparam("platform_user_id"),
)
# An UPDATE without values() sets the columns its parameters name (here: timezone).
_SET_TIMEZONE = update(_USERS).where(_USERS.c.id == bindparam("user"))
_CHANNEL_ID = sa_select(_CHANNELS.c.id).where(
    _CHANNELS.c.platform == bindparam("platform"),
    _CHANNELS.c.platform_chat_id == bindparam("platform_chat_id"),
)
# Parameter names differ from the column names: an UPDATE reserves those for its values.
_IS_OPEN_HERE = (
    _CONVERSATIONS.c.user_id == bindparam("user"),
    _CONVERSATIONS.c.channel_id == bindparam("channel"),
    _CONVERSATIONS.c.thread_key == bindparam("thread"),
    _CONVERSATIONS.c.closed_at.is_(None),
)
_OPEN_CONVERSATION = sa_select(_CONVERSATIONS.c.id).where(*_IS_OPEN_HERE)
_CLOSE = update(_CONVERSATIONS).where(*_IS_OPEN_HERE)  # sets closed_at
_THREAD_EXISTS = (
    sa_select(_CONVERSATIONS.c.id)
    .join(_CHANNELS, _CHANNELS.c.id == _CONVERSATIONS.c.channel_id)
    .where(
        _CHANNELS.c.platform == bindparam("platform"),
        _CHANNELS.c.platform_chat_id == bindparam("platform_chat_id"),
        _CONVERSATIONS.c.thread_key == bindparam("thread_key"),
    )
    .limit(1)
)
_MESSAGE_COLUMNS = (
    _MESSAGES.c.id,
    _MESSAGES.c.role,
    _MESSAGES.c.content,
    _MESSAGES.c.tool_calls,
    _MESSAGES.c.tool_call_id,
    _MESSAGES.c.name,
    _MESSAGES.c.is_error,
    _MESSAGES.c.tokens,
    _MESSAGES.c.vendor_state,
    _MESSAGES.c.id,
    _MESSAGES.c.turn_id,
)
_HISTORY = (
    sa_select(*_MESSAGE_COLUMNS)
    .where(_MESSAGES.c.conversation_id == bindparam("conversation_id"))
    .order_by(_MESSAGES.c.id.desc())
    .limit(bindparam("limit"))
)
_OPEN_HISTORY = (
    sa_select(_MESSAGES.c.conversation_id, *_MESSAGE_COLUMNS)
    .join(_CONVERSATIONS, _CONVERSATIONS.c.id == _MESSAGES.c.conversation_id)
    .where(*_IS_OPEN_HERE)
    .order_by(_MESSAGES.c.id.desc())
    .limit(bindparam("limit"))
)
_TURN_MESSAGES = (
    sa_select(_MESSAGES.c.conversation_id, *_MESSAGE_COLUMNS)
    .where(_MESSAGES.c.turn_id == bindparam("turn"))
    .order_by(_MESSAGES.c.id)
)
_TURNS: Table = Turn.__table__  # type: ignore[attr-defined]
_TURN_RUNNING = (
    update(_TURNS)
    .where(_TURNS.c.id == bindparam("turn"))
    .values(state=bindparam("new_state"), updated_at=bindparam("now"))
)
_INSERT_MESSAGE = insert(_MESSAGES)
_INSERT_USAGE = insert(UsageRecord.__table__)  # type: ignore[attr-defined]


def lock_number(key: Hashable) -> int:
    """A stable signed 64-bit number for an advisory lock (the same in every replica)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
