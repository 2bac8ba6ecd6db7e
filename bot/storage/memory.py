"""`MemoryStore`: the facts users asked Parley to remember, and conversation summaries.

Facts belong to one user (their platform identity) and follow them across chats; each
has a scope: "private" facts are offered only in the user's DMs, "everywhere" facts in
groups and channels too. Nothing here decides *what* is remembered: the `remember` tool
stores only what the user asked for (its description says so).

A summary covers a conversation's messages up to `through_message_id`. When the user
asks Parley to forget something, every summary of theirs becomes an empty watermark at
their newest message: a forgotten fact can live on in a summary only until that moment,
and the messages before it are never summarised again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from bot.domain import ChatKind, ChatRef, MemoryFact, MemoryScope, UserRef
from bot.errors import ToolError
from bot.storage.database import Database
from bot.storage.models import (
    Conversation,
    ConversationSummary,
    MemoryFactRow,
    Message,
    utcnow,
)
from bot.storage.repository import ConversationStore

_FACTS: Table = MemoryFactRow.__table__  # type: ignore[attr-defined]
_SUMMARIES: Table = ConversationSummary.__table__  # type: ignore[attr-defined]
_CONVERSATIONS: Table = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]

_FACT_COLUMNS = (_FACTS.c.id, _FACTS.c.text, _FACTS.c.scope, _FACTS.c.created_at)
_FACTS_OF = (
    select(*_FACT_COLUMNS).where(_FACTS.c.user_id == bindparam("user")).order_by(_FACTS.c.id)
)
_SHARED_FACTS_OF = _FACTS_OF.where(_FACTS.c.scope == MemoryScope.EVERYWHERE.value)
_COUNT_FACTS = select(func.count()).select_from(_FACTS).where(_FACTS.c.user_id == bindparam("user"))
_SUMMARY_OF = select(_SUMMARIES.c.through_message_id, _SUMMARIES.c.text, _SUMMARIES.c.tokens).where(
    _SUMMARIES.c.conversation_id == bindparam("conversation")
)
_CONVERSATIONS_OF = select(_CONVERSATIONS.c.id).where(_CONVERSATIONS.c.user_id == bindparam("user"))


@dataclass(frozen=True, slots=True)
class Summary:
    """What the model is told of a conversation's messages up to `through_message_id`."""

    through_message_id: int
    text: str
    tokens: int


@dataclass(frozen=True, slots=True)
class TurnMemory:
    """What a turn offers the model besides its history."""

    summary: Summary | None
    facts: list[MemoryFact]


# A step of a turn's first transaction that reads its memory (see `MemoryStore.reader`).
TurnMemoryReader = Callable[[Connection, int], TurnMemory]


def shows_private(chat: ChatRef) -> bool:
    return chat.kind is ChatKind.DM


class MemoryStore:
    def __init__(
        self, database: Database, store: ConversationStore, *, max_facts: int, max_chars: int
    ) -> None:
        self.db = database
        self._store = store
        self.max_facts = max_facts
        self.max_chars = max_chars

    # -- facts (MemoryBook) --------------------------------------------------------------

    async def remember(
        self, user: UserRef, chat: ChatRef, text: str, scope: MemoryScope
    ) -> MemoryFact:
        text = " ".join(text.split())
        if not text:
            raise ToolError("There is nothing to remember: the text is empty.")
        if len(text) > self.max_chars:
            raise ToolError(
                f"A remembered fact holds at most {self.max_chars} characters; "
                f"this one has {len(text)}. Store a shorter version."
            )
        user_id, channel_id = await self._store.ids_of(user, chat)
        created_at = utcnow()
        values = {
            "user_id": user_id,
            "text": text,
            "scope": scope.value,
            "origin_channel_id": channel_id,
            "created_at": created_at,
        }

        def work(connection: Connection) -> MemoryFact | None:
            held = connection.execute(_COUNT_FACTS, {"user": user_id}).scalar_one()
            if held >= self.max_facts:
                return None
            fact_id = connection.execute(insert(_FACTS).returning(_FACTS.c.id), values).scalar_one()
            return MemoryFact(int(fact_id), text, scope, created_at)

        fact = await self.db.run(work)
        if fact is None:
            raise ToolError(
                f"The user already has {self.max_facts} remembered facts, the most allowed. "
                "Ask which one to forget first."
            )
        return fact

    async def facts_for(self, user: UserRef, chat: ChatRef) -> list[MemoryFact]:
        user_id = await self._store.user_id_of(user)
        query = _FACTS_OF if shows_private(chat) else _SHARED_FACTS_OF
        rows = await self.db.run(
            lambda connection: list(connection.execute(query, {"user": user_id})), write=False
        )
        return [_to_fact(row) for row in rows]

    async def forget(self, user: UserRef, chat: ChatRef, fact_id: int | None) -> int:
        user_id = await self._store.user_id_of(user)
        condition = [_FACTS.c.user_id == user_id]
        if fact_id is not None:
            condition.append(_FACTS.c.id == fact_id)
        if not shows_private(chat):
            # What a group cannot see, it cannot delete either (the list said nothing of it).
            condition.append(_FACTS.c.scope == MemoryScope.EVERYWHERE.value)

        def work(connection: Connection) -> int:
            removed = connection.execute(delete(_FACTS).where(*condition)).rowcount
            if removed:
                _watermark_summaries(connection, user_id)
            return int(removed)

        return await self.db.run(work)

    # -- for a turn -----------------------------------------------------------------------

    def reader(
        self, user_id: int, chat: ChatRef, *, facts: bool, summary: bool
    ) -> TurnMemoryReader:
        """What a turn reads of memory, as a step of the turn's own first transaction
        (`ConversationStore.start_turn_with`): no extra trip to the database."""
        fact_query = _FACTS_OF if shows_private(chat) else _SHARED_FACTS_OF

        def read(connection: Connection, conversation_id: int) -> TurnMemory:
            found = None
            if summary:
                row = connection.execute(_SUMMARY_OF, {"conversation": conversation_id}).first()
                if row is not None:
                    found = Summary(int(row.through_message_id), row.text, int(row.tokens))
            rows = list(connection.execute(fact_query, {"user": user_id})) if facts else []
            return TurnMemory(found, [_to_fact(row) for row in rows])

        return read

    async def save_summary(
        self, conversation_id: int, through_message_id: int, text: str, tokens: int
    ) -> bool:
        """Store a newer summary; False (nothing written) when the stored one already
        covers as much (another replica, or a watermark written meanwhile)."""
        values = {
            "conversation_id": conversation_id,
            "through_message_id": through_message_id,
            "text": text,
            "tokens": tokens,
            "updated_at": utcnow(),
        }

        def work(connection: Connection) -> bool:
            row = connection.execute(_SUMMARY_OF, {"conversation": conversation_id}).first()
            if row is None:
                connection.execute(insert(_SUMMARIES), values)
                return True
            if int(row.through_message_id) >= through_message_id:
                return False
            connection.execute(
                update(_SUMMARIES)
                .where(_SUMMARIES.c.conversation_id == conversation_id)
                .values(**values)
            )
            return True

        return await self.db.run(work)

    # -- for admins -----------------------------------------------------------------------

    async def facts_of_user(self, user_id: int) -> list[MemoryFact]:
        rows = await self.db.run(
            lambda connection: list(connection.execute(_FACTS_OF, {"user": user_id})),
            write=False,
        )
        return [_to_fact(row) for row in rows]

    async def delete_fact(self, user_id: int, fact_id: int) -> bool:
        def work(connection: Connection) -> bool:
            removed = connection.execute(
                delete(_FACTS).where(_FACTS.c.user_id == user_id, _FACTS.c.id == fact_id)
            ).rowcount
            if removed:
                _watermark_summaries(connection, user_id)
            return bool(removed)

        return await self.db.run(work)

    async def erase_user(self, user_id: int) -> ErasedData:
        """Delete what Parley keeps of a user's words: facts, summaries and the messages of
        every conversation. The user row stays (usage and the audit log refer to it), as
        does the usage accounting; reminders are the scheduler's (cancel them there)."""

        def work(connection: Connection) -> ErasedData:
            conversations = select(_CONVERSATIONS.c.id).where(_CONVERSATIONS.c.user_id == user_id)
            facts = connection.execute(delete(_FACTS).where(_FACTS.c.user_id == user_id)).rowcount
            summaries = connection.execute(
                delete(_SUMMARIES).where(_SUMMARIES.c.conversation_id.in_(conversations))
            ).rowcount
            messages = connection.execute(
                delete(_MESSAGES).where(_MESSAGES.c.conversation_id.in_(conversations))
            ).rowcount
            return ErasedData(int(facts), int(summaries), int(messages))

        return await self.db.run(work)


@dataclass(frozen=True, slots=True)
class ErasedData:
    facts: int
    summaries: int
    messages: int


def _watermark_summaries(connection: Connection, user_id: int) -> None:
    """Empty every summary of the user's conversations, up to their newest message."""
    newest = (
        select(func.coalesce(func.max(_MESSAGES.c.id), 0))
        .where(_MESSAGES.c.conversation_id == bindparam("conversation"))
        .scalar_subquery()
    )
    for conversation_id in connection.execute(_CONVERSATIONS_OF, {"user": user_id}).scalars():
        through = connection.execute(select(newest), {"conversation": conversation_id}).scalar_one()
        if not through:
            continue
        values = {"through_message_id": through, "text": "", "tokens": 0, "updated_at": utcnow()}
        changed = connection.execute(
            update(_SUMMARIES)
            .where(_SUMMARIES.c.conversation_id == conversation_id)
            .values(**values)
        ).rowcount
        if not changed:
            connection.execute(insert(_SUMMARIES), {"conversation_id": conversation_id, **values})


def _to_fact(row: object) -> MemoryFact:
    created_at: datetime = row.created_at  # type: ignore[attr-defined]
    return MemoryFact(
        int(row.id),  # type: ignore[attr-defined]
        row.text,  # type: ignore[attr-defined]
        MemoryScope(row.scope),  # type: ignore[attr-defined]
        created_at,
    )


__all__: Sequence[str] = ("ErasedData", "MemoryStore", "Summary", "TurnMemory", "TurnMemoryReader")
