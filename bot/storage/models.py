"""The tables (SQLModel). Timestamps are timezone-aware UTC everywhere.

Schema changes go through Alembic (`bot/storage/migrations`), never `create_all`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for busy tables.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kwargs)
    )


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=128)
    display_name: str = Field(default="", max_length=255)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp()


class Channel(SQLModel, table=True):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_chat_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    title: str = Field(default="", max_length=255)
    created_at: datetime = _timestamp()
    # Set by admins: None means the global setting applies.
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    model: str | None = Field(default=None, max_length=128)
    # Budgets and limits overriding the global ones: {"user_daily_tokens": 1000, ...}.
    limits: dict[str, int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Conversation(SQLModel, table=True):
    """One user's context in one channel (and thread). `/reset` closes it for good."""

    __tablename__ = "conversations"
    __table_args__ = (
        # At most one open conversation per user, channel and thread.
        Index(
            "uq_conversations_open",
            "user_id",
            "channel_id",
            "thread_key",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
        # The console lists a channel's conversations, newest first.
        Index("ix_conversations_channel_id_id", "channel_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    channel_id: int = Field(foreign_key="channels.id")
    thread_key: str = Field(default="", max_length=128)
    created_at: datetime = _timestamp()
    closed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Message(SQLModel, table=True):
    """A conversation entry. `tool_calls` holds `[{id, name, arguments}]` (arguments raw);
    `vendor_state` the opaque reasoning state of an assistant message, if any."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    conversation_id: int = Field(foreign_key="conversations.id")
    role: str = Field(max_length=16)
    content: str = ""
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    tool_call_id: str = Field(default="", max_length=128)
    name: str = Field(default="", max_length=128)
    is_error: bool = False
    tokens: int = 0
    # {"vendor": ..., "data": {...}}: reasoning state the vendor wants back (VendorState).
    vendor_state: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _timestamp()


class UsageRecord(SQLModel, table=True):
    """Tokens of one model call."""

    __tablename__ = "usage"
    __table_args__ = (
        # Budgets sum a user's or channel's tokens since a day or month began.
        Index("ix_usage_user_id_created_at", "user_id", "created_at"),
        Index("ix_usage_channel_id_created_at", "channel_id", "created_at"),
        # Covers the console's tokens-per-day chart (no table lookups).
        Index(
            "ix_usage_created_at_channel_id_tokens",
            "created_at",
            "channel_id",
            "prompt_tokens",
            "completion_tokens",
        ),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    user_id: int = Field(foreign_key="users.id", index=True)
    channel_id: int = Field(foreign_key="channels.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversations.id")
    model: str = Field(default="", max_length=128)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime = _timestamp(index=True)


class ProcessedEvent(SQLModel, table=True):
    """A platform event already taken: re-deliveries of the same id are ignored.

    `bot` is the receiving bot (Telegram: the bot's id; Slack: the app id), so two bots on
    one database never share an id space; rows are pruned after
    PARLEY_EVENT_RETENTION_HOURS (Telegram re-randomises update ids after a quiet week).
    """

    __tablename__ = "processed_events"

    platform: str = Field(primary_key=True, max_length=32)
    bot: str = Field(default="", primary_key=True, max_length=64)
    event_id: str = Field(primary_key=True, max_length=255)
    created_at: datetime = _timestamp(index=True)


class Reminder(SQLModel, table=True):
    """A reminder or scheduled follow-up: the source of truth the scheduler rebuilds from.

    `due_at` is the next time it is due (UTC); `retry_at` is set while a failed delivery
    waits for its next attempt. A recurring reminder keeps its `cron` rule in `timezone`
    and moves `due_at` forward after each delivery.
    """

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_status_due_at", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    channel_id: int = Field(foreign_key="channels.id")
    thread_key: str = Field(default="", max_length=128)
    kind: str = Field(max_length=16)
    text: str
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    timezone: str = Field(max_length=64)
    recurrence: str = Field(default="none", max_length=16)
    cron: str = Field(default="", max_length=128)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str = ""
    retry_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    delivered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    deliveries: int = 0
    created_at: datetime = _timestamp()


class SentEmail(SQLModel, table=True):
    """Every email the email tool tried to send: who asked, to whom, and what happened."""

    __tablename__ = "sent_emails"

    id: int | None = Field(default=None, primary_key=True)
    requested_by: str = Field(max_length=192)
    chat: str = Field(default="", max_length=192)
    recipients: str
    subject: str = Field(max_length=998)
    message_id: str = Field(default="", max_length=255)
    status: str = Field(max_length=16)
    error: str = ""
    created_at: datetime = _timestamp(index=True)


class Lease(SQLModel, table=True):
    """A named lease one replica holds until `expires_at` (the scheduler leader)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class ChannelTool(SQLModel, table=True):
    """An admin's choice for one tool (or `mcp:<server>`, all of its tools) in one channel.

    No row: the defaults from settings apply."""

    __tablename__ = "channel_tools"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    tool: str = Field(primary_key=True, max_length=128)
    enabled: bool
    changed_by: str = Field(default="", max_length=160)
    changed_at: datetime = _timestamp()


class AuditEntry(SQLModel, table=True):
    """Who did what, where, when and from which surface (also refused attempts)."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    created_at: datetime = _timestamp(index=True)
    actor: str = Field(max_length=160)
    action: str = Field(max_length=64)
    place: str = Field(default="", max_length=160)
    surface: str = Field(default="", max_length=32)
    allowed: bool = True
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session. The cookie holds a random token; only its SHA-256 is
    stored, so reading this table gives no usable cookie. Signing out deletes the row."""

    __tablename__ = "console_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    csrf: str = Field(max_length=64)
    # Which password it was signed in with (an HMAC of it): a new password ends it.
    password_tag: str = Field(max_length=64)
    client: str = Field(default="", max_length=64)
    created_at: datetime = _timestamp()
    seen_at: datetime = _timestamp()
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class TurnRecord(SQLModel, table=True):
    """One finished turn as the console's overview counts it: when, where, how long, and
    the model and tool calls it made as `{name: [calls, failures]}`."""

    __tablename__ = "turn_log"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    turn_id: str = Field(max_length=32)
    finished_at: datetime = _timestamp(index=True)
    platform: str = Field(max_length=32)
    outcome: str = Field(max_length=16)
    seconds: float
    vendor: str = Field(default="", max_length=64)
    models: dict[str, list[int]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    tools: dict[str, list[int]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    error: str = Field(default="", max_length=255)


# -- approvals (bot/approvals.py) ---------------------------------------------------------


class ApprovalRequest(SQLModel, table=True):
    """One question "may this tool call run?" to its asker, from asking to answer.

    Any replica may record the press; the replica that asked polls the row (and keeps
    `seen_at` fresh while it waits, so a press after that process is gone says "expired").
    `full_text` is the whole card, for "Show all" pressed on whichever replica.
    """

    __tablename__ = "approval_requests"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    token: str = Field(max_length=32, unique=True)
    asker: str = Field(max_length=160)
    place: str = Field(max_length=160)
    channel_id: int
    tool: str = Field(max_length=64)
    call: str = Field(sa_column=Column(Text, nullable=False))
    full_text: str = Field(sa_column=Column(Text, nullable=False))
    may_remember: bool = True
    # open, once, always, denied, expired
    state: str = Field(default="open", max_length=16)
    created_at: datetime = _timestamp()
    seen_at: datetime = _timestamp()
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    answered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class ApprovalGrant(SQLModel, table=True):
    """ "Always allow": this tool runs for this user in this channel without a question."""

    __tablename__ = "approval_grants"
    __table_args__ = (UniqueConstraint("asker", "channel_id", "tool"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    asker: str = Field(max_length=160)
    place: str = Field(max_length=160)
    channel_id: int
    tool: str = Field(max_length=64)
    created_at: datetime = _timestamp()


class ApprovalRule(SQLModel, table=True):
    """An admin's choice for one tool in one channel: ask, remember or never."""

    __tablename__ = "approval_rules"
    __table_args__ = (UniqueConstraint("channel_id", "tool"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    channel_id: int
    tool: str = Field(max_length=64)
    mode: str = Field(max_length=16)
    set_by: str = Field(max_length=160)
    set_at: datetime = _timestamp()
