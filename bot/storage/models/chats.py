"""Who talks where: users, channels, conversations, their messages and usage, and the
events already handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=128)
    display_name: str = Field(default="", max_length=255)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime = timestamp()
    # The catalog locale the user chose (/language), None: follow their app's language,
    # `platform_language` (the tag Telegram or Slack last reported), then PARLEY_LANGUAGE.
    language: str | None = Field(default=None, max_length=16)
    platform_language: str | None = Field(default=None, max_length=35)


class Channel(SQLModel, table=True):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_chat_id: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    title: str = Field(default="", max_length=255)
    created_at: datetime = timestamp()
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
    created_at: datetime = timestamp()
    closed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Message(SQLModel, table=True):
    """A conversation entry. `tool_calls` holds `[{id, name, arguments}]` (arguments raw);
    `vendor_state` the opaque reasoning state of an assistant message, if any."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_turn_id", "turn_id"),
    )

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
    created_at: datetime = timestamp()
    # The durable turn (`turns.id`) that wrote it: history keeps a turn's messages
    # together, and a resumed turn finds its question here instead of storing it twice.
    turn_id: int | None = Field(default=None, sa_column=Column(BigIntId, nullable=True))


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
    created_at: datetime = timestamp(index=True)


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
    created_at: datetime = timestamp(index=True)
