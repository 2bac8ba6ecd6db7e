"""Messages and usage as rows and back, and the one insert-or-ignore of every store."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from bot.domain import ChatMessage, Role, ToolCall, Usage, VendorState


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: ChatMessage
    tokens: int
    id: int = 0  # the row's id once stored (0 for a message not yet written)


@dataclass(frozen=True, slots=True)
class UsageEntry:
    user_id: int
    channel_id: int
    conversation_id: int | None
    model: str
    usage: Usage

    def to_row(self, now: Any) -> dict[str, Any]:
        """The `usage` row, as column values."""
        return {
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "conversation_id": self.conversation_id,
            "model": self.model,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "created_at": now,
        }


def arranged(rows: Sequence[Any], *, current_turn: int | None) -> list[Any]:
    """History rows (oldest first) with each durable turn's messages together, where its
    question was asked (a resumed turn's answer may be stored after later turns),
    without the question of any other durable turn that got no answer, and without the
    current turn's own messages."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        key = ("turn", row.turn_id) if row.turn_id is not None else ("row", row.id)
        groups.setdefault(key, []).append(row)
    kept: list[Any] = []
    for (kind, turn), members in groups.items():
        # The current turn's own messages are not history: the engine adds them itself.
        answered = any(member.role == "assistant" for member in members)
        if kind == "turn" and (turn == current_turn or not answered):
            continue
        kept.extend(members)
    return kept


def to_row(
    conversation_id: int, stored: StoredMessage, now: Any, turn_id: int | None = None
) -> dict[str, Any]:
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
        "vendor_state": _vendor_state_row(message.vendor_state),
        "created_at": now,
        "turn_id": turn_id,
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
        vendor_state=_to_vendor_state(row.vendor_state),
    )


def _vendor_state_row(state: VendorState | None) -> dict[str, Any] | None:
    return None if state is None else {"vendor": state.vendor, "data": state.data}


def _to_vendor_state(raw: Any) -> VendorState | None:
    # A row written by another version, or edited by hand, is ignored rather than trusted.
    if not isinstance(raw, dict):
        return None
    vendor, data = raw.get("vendor"), raw.get("data")
    if not isinstance(vendor, str) or not isinstance(data, dict):
        return None
    return VendorState(vendor, data)


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


def insert_ignore(
    connection: Connection,
    table: Table,
    values: dict[str, Any],
    *,
    conflict_columns: tuple[str, ...] | None = None,
    index_where: str | None = None,
) -> bool:
    """`INSERT … ON CONFLICT DO NOTHING` on SQLite and PostgreSQL; True if a row went in."""
    statement = insert_ignore_statement(
        connection.dialect.name, table, conflict_columns, index_where
    )
    return bool(connection.execute(statement, values).rowcount)


@functools.cache
def insert_ignore_statement(
    dialect: str, table: Table, conflict_columns: tuple[str, ...] | None, index_where: str | None
) -> Any:
    # Built once per shape: every message's event claim runs one (the hot path).
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if conflict_columns is None:
        return insert(table).on_conflict_do_nothing()
    return insert(table).on_conflict_do_nothing(
        index_elements=list(conflict_columns),
        index_where=text(index_where) if index_where else None,
    )
