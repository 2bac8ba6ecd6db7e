"""`TurnStore`: the SQL of durable turns (bot/turn/durable.py) and of the tool call journal.

A turn is claimed with its input in the transaction that claims its event, so a
re-delivery is refused and a dead process's turn can still be run again from the row.
Taking over the open turns of dead processes is one UPDATE guarded by their leases:
a turn whose holder's lease is alive (or that somebody else took first) is not touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.storage.database import Database
from bot.storage.models import (
    Lease,
    Message,
    ProcessedEvent,
    ToolCallRecord,
    Turn,
    TurnState,
    utcnow,
)

_TURNS: Table = Turn.__table__  # type: ignore[attr-defined]
_JOURNAL: Table = ToolCallRecord.__table__  # type: ignore[attr-defined]
_LEASES: Table = Lease.__table__  # type: ignore[attr-defined]
_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
_EVENTS: Table = ProcessedEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """An open turn as the resume sweep reads it back."""

    id: int
    platform: str
    bot: str
    message: IncomingMessage
    reply: dict[str, Any]
    preview: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A side-effecting call as journaled: settled (with its result) or only begun."""

    tool: str
    arguments_digest: str
    settled: bool
    result: str
    is_error: bool


class TurnStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        dialect = sqlite if database.is_sqlite else postgresql
        self._claim_event = dialect.insert(_EVENTS).on_conflict_do_nothing()
        begin = dialect.insert(_JOURNAL)
        # A position journaled by an earlier attempt with another call (the model changed
        # its mind on the resumed round) is that position's new call now.
        self._begin = begin.on_conflict_do_update(
            index_elements=[_JOURNAL.c.turn_id, _JOURNAL.c.round, _JOURNAL.c.position],
            set_={
                "tool": begin.excluded.tool,
                "arguments_digest": begin.excluded.arguments_digest,
                "settled": False,
                "result": None,
                "is_error": False,
                "started_at": begin.excluded.started_at,
                "settled_at": None,
            },
        )

    async def claim(
        self, message: IncomingMessage, bot: str, reply: dict[str, Any], holder: str
    ) -> int | None:
        """Claim the event of `message` for `bot` and record the turn it starts, in one
        transaction; the turn's id, or None when the event was claimed before."""
        now = utcnow()
        event = {
            "platform": message.platform,
            "bot": bot,
            "event_id": message.event_id,
            "created_at": now,
        }
        row = {
            "platform": message.platform,
            "bot": bot,
            "event_id": message.event_id,
            "holder": holder,
            "state": TurnState.CLAIMED,
            "attempts": 1,
            "chat_id": message.chat.platform_chat_id,
            "chat_kind": str(message.chat.kind),
            "chat_title": message.chat.title[:255],
            "thread_key": message.thread_key,
            "user_id": message.user.platform_user_id,
            "user_name": message.user.display_name[:255],
            "text": message.text,
            "platform_message_id": message.platform_message_id,
            "reply": reply,
            "preview": "",
            "created_at": now,
            "updated_at": now,
        }

        def work(connection: Connection) -> int | None:
            if not connection.execute(self._claim_event, event).rowcount:
                return None
            return int(connection.execute(_INSERT_TURN, row).scalar_one())

        return await self.db.run(work)

    async def claimed_by(self, platform: str, bot: str, event_id: str, holder: str) -> int | None:
        """The turn of this event if `holder` claimed it and it has not started: a claim
        whose commit went through while its caller heard only an error."""
        values = {"platform": platform, "bot": bot, "event": event_id, "holder": holder}
        row = await self.db.run(lambda connection: connection.execute(_CLAIMED_BY, values).first())
        return None if row is None else int(row[0])

    async def set_preview(self, turn_id: int, preview: str) -> None:
        values = {"turn": turn_id, "preview": preview[:128]}
        await self.db.run(lambda connection: connection.execute(_SET_PREVIEW, values))

    async def finish(self, turn_id: int, state: str = TurnState.DONE) -> None:
        values = {"turn": turn_id, "new_state": state, "now": utcnow()}
        await self.db.run(lambda connection: connection.execute(_FINISH, values))

    async def take_over(self, holder: str, *, now: datetime, limit: int = 500) -> list[StoredTurn]:
        """Make `holder` the holder of open turns whose holder's lease has expired (at most
        `limit`, oldest first); the turns taken, each with its attempt counted."""
        values = {"me": holder, "now": now, "limit": limit}

        def work(connection: Connection) -> list[Any]:
            ids = [row.id for row in connection.execute(_ORPHANS, values)]
            if not ids:
                return []
            taken = connection.execute(
                _TAKE, [{"turn": turn_id, "me": holder, "now": now} for turn_id in ids]
            )
            del taken  # executemany: rowcount is not per row; read them back instead
            return list(connection.execute(_TAKEN, {"ids": ids, "me": holder}))

        rows = await self.db.run(work)
        return [_to_stored_turn(row) for row in rows]

    async def open_turns(self) -> list[StoredTurn]:
        """The turns claimed or running now (any process), oldest first: for operators,
        tests and benchmarks."""
        query = select(_TURNS).where(_TURNS.c.state.in_(TurnState.OPEN)).order_by(_TURNS.c.id)
        rows = await self.db.run(lambda c: list(c.execute(query)), write=False)
        return [_to_stored_turn(row) for row in rows]

    async def mark_lost(self, turn_id: int, note: str, tokens: int) -> None:
        """Lost: `note` joins the turn's conversation as its answer (so the model reads the
        question as not answered, never as a new one), and the turn ends as lost."""
        now = utcnow()

        def work(connection: Connection) -> None:
            conversation = connection.execute(_TURN_CONVERSATION, {"turn": turn_id}).scalar()
            if conversation is not None:
                connection.execute(
                    insert(_MESSAGES),
                    [
                        {
                            "conversation_id": conversation,
                            "role": "assistant",
                            "content": note,
                            "tool_calls": None,
                            "tool_call_id": "",
                            "name": "",
                            "is_error": False,
                            "tokens": tokens,
                            "vendor_state": None,
                            "created_at": now,
                            "turn_id": turn_id,
                        }
                    ],
                )
            connection.execute(_FINISH, {"turn": turn_id, "new_state": TurnState.LOST, "now": now})

        await self.db.run(work)

    async def prune(self, before: datetime) -> int:
        """Forget turns finished (done or lost) before `before`, with their journal; how
        many went. The rows hold the users' questions: they are kept only as long as the
        event claims they stand beside (PARLEY_EVENT_RETENTION_HOURS)."""

        def work(connection: Connection) -> int:
            finished = select(_TURNS.c.id).where(
                _TURNS.c.state.in_((TurnState.DONE, TurnState.LOST)),
                _TURNS.c.updated_at < before,
            )
            connection.execute(delete(_JOURNAL).where(_JOURNAL.c.turn_id.in_(finished)))
            return int(connection.execute(delete(_TURNS).where(_TURNS.c.id.in_(finished))).rowcount)

        return await self.db.run(work)

    async def erase_inputs(self, platform: str, user_id: str) -> int:
        """Blank the stored questions of a user's finished turns and drop their journal
        (an erased user's words must not outlive the erase); the rows stay as claims, so a
        re-delivered event is still refused. Open turns keep their input to finish."""

        def work(connection: Connection) -> int:
            finished = select(_TURNS.c.id).where(
                _TURNS.c.platform == platform,
                _TURNS.c.user_id == user_id,
                _TURNS.c.state.in_((TurnState.DONE, TurnState.LOST)),
            )
            connection.execute(delete(_JOURNAL).where(_JOURNAL.c.turn_id.in_(finished)))
            blanked = connection.execute(
                update(_TURNS)
                .where(_TURNS.c.id.in_(finished), _TURNS.c.text != "")
                .values(text="", user_name="", reply={}, chat_title="")
            )
            return int(blanked.rowcount)

        return await self.db.run(work)

    # -- the journal of side-effecting calls ------------------------------------------

    async def recall(self, turn_id: int, round_number: int) -> dict[int, JournalEntry]:
        """What an earlier attempt journaled for this round: position -> entry."""
        values = {"turn": turn_id, "round": round_number}
        rows = await self.db.run(lambda c: list(c.execute(_RECALL, values)), write=False)
        return {
            int(row.position): JournalEntry(
                row.tool, row.arguments_digest, bool(row.settled), row.result or "", row.is_error
            )
            for row in rows
        }

    async def begin_call(
        self, turn_id: int, round_number: int, position: int, tool: str, digest: str
    ) -> None:
        values = {
            "turn_id": turn_id,
            "round": round_number,
            "position": position,
            "tool": tool,
            "arguments_digest": digest,
            "settled": False,
            "result": None,
            "is_error": False,
            "started_at": utcnow(),
            "settled_at": None,
        }
        await self.db.run(lambda connection: connection.execute(self._begin, values))

    async def settle_call(
        self, turn_id: int, round_number: int, position: int, result: str, is_error: bool
    ) -> None:
        values = {
            "turn": turn_id,
            "round_number": round_number,
            "at": position,
            "outcome": result,
            "failed": is_error,
            "when": utcnow(),
        }
        await self.db.run(lambda connection: connection.execute(_SETTLE, values))


def _to_stored_turn(row: Any) -> StoredTurn:
    chat = ChatRef(row.platform, row.chat_id, ChatKind(row.chat_kind), row.chat_title)
    message = IncomingMessage(
        chat=chat,
        user=UserRef(row.platform, row.user_id, row.user_name),
        text=row.text,
        thread_key=row.thread_key,
        platform_message_id=row.platform_message_id,
        addressed=True,
        event_id=row.event_id,
    )
    return StoredTurn(
        int(row.id),
        row.platform,
        row.bot,
        message,
        dict(row.reply or {}),
        row.preview,
        int(row.attempts),
        # SQLite gives naive datetimes back; every timestamp here is UTC.
        row.created_at if row.created_at.tzinfo is not None else row.created_at.replace(tzinfo=UTC),
    )


_INSERT_TURN = insert(_TURNS).returning(_TURNS.c.id)
_SET_PREVIEW = update(_TURNS).where(_TURNS.c.id == bindparam("turn"))  # sets preview
_CLAIMED_BY = select(_TURNS.c.id).where(
    _TURNS.c.platform == bindparam("platform"),
    _TURNS.c.bot == bindparam("bot"),
    _TURNS.c.event_id == bindparam("event"),
    _TURNS.c.holder == bindparam("holder"),
    _TURNS.c.state == TurnState.CLAIMED,
)
_FINISH = (
    update(_TURNS)
    .where(_TURNS.c.id == bindparam("turn"))
    .values(state=bindparam("new_state"), updated_at=bindparam("now"))
)
_HOLDER_ALIVE = exists().where(
    _LEASES.c.name == _TURNS.c.holder, _LEASES.c.expires_at >= bindparam("now")
)
_ORPHANS = (
    select(_TURNS.c.id)
    .where(_TURNS.c.state.in_(TurnState.OPEN), _TURNS.c.holder != bindparam("me"), ~_HOLDER_ALIVE)
    .order_by(_TURNS.c.id)
    .limit(bindparam("limit"))
)
# The same guard again per row: a turn somebody took meanwhile is left alone.
_TAKE = (
    update(_TURNS)
    .where(
        _TURNS.c.id == bindparam("turn"),
        # Not `IN (...)`: an expanding list cannot go into an executemany.
        or_(*(_TURNS.c.state == state for state in TurnState.OPEN)),
        _TURNS.c.holder != bindparam("me"),
        ~_HOLDER_ALIVE,
    )
    .values(holder=bindparam("me"), attempts=_TURNS.c.attempts + 1, updated_at=bindparam("now"))
)
_TAKEN = (
    select(_TURNS)
    .where(_TURNS.c.id.in_(bindparam("ids", expanding=True)), _TURNS.c.holder == bindparam("me"))
    .order_by(_TURNS.c.id)
)
_TURN_CONVERSATION = (
    select(_MESSAGES.c.conversation_id)
    .where(_MESSAGES.c.turn_id == bindparam("turn"))
    .order_by(_MESSAGES.c.id)
    .limit(1)
)
_RECALL = select(_JOURNAL).where(
    _JOURNAL.c.turn_id == bindparam("turn"), _JOURNAL.c.round == bindparam("round")
)
_SETTLE = (
    update(_JOURNAL)
    .where(
        and_(
            _JOURNAL.c.turn_id == bindparam("turn"),
            _JOURNAL.c.round == bindparam("round_number"),
            _JOURNAL.c.position == bindparam("at"),
        )
    )
    .values(
        settled=True,
        result=bindparam("outcome"),
        is_error=bindparam("failed"),
        settled_at=bindparam("when"),
    )
)

__all__: Sequence[str] = ["JournalEntry", "StoredTurn", "TurnStore"]
