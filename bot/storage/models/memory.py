"""What users asked to be remembered, and rolling summaries of long conversations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp

# -- memory (facts users asked to remember; rolling summaries of long conversations) ------


class MemoryFactRow(SQLModel, table=True):
    """A fact a user asked Parley to remember. `scope`: "private" (offered in the user's
    DMs only) or "everywhere" (also in groups and channels)."""

    __tablename__ = "memory_facts"
    __table_args__ = (Index("ix_memory_facts_user_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    scope: str = Field(max_length=16)
    origin_channel_id: int | None = Field(default=None, foreign_key="channels.id")
    created_at: datetime = timestamp()


class ConversationSummary(SQLModel, table=True):
    """What the model is told of a conversation's older part: a summary of every message
    up to `through_message_id`. An empty text is a watermark (the user asked Parley to
    forget something: older messages are never summarised again)."""

    __tablename__ = "conversation_summaries"

    conversation_id: int = Field(foreign_key="conversations.id", primary_key=True)
    through_message_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    tokens: int = 0
    updated_at: datetime = timestamp()


class ObservedMessage(SQLModel, table=True):
    """A group message not addressed to Parley, kept (opt-in: PARLEY_GROUP_CONTEXT_MESSAGES)
    so the next turn addressed to it there sees what was said; pruned by age and count."""

    __tablename__ = "observed_messages"
    __table_args__ = (
        UniqueConstraint("platform", "chat_id", "message_id"),
        Index("ix_observed_messages_chat", "platform", "chat_id", "thread_key", "id"),
        Index("ix_observed_messages_observed_at", "observed_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    platform: str = Field(max_length=32)
    chat_id: str = Field(max_length=128)
    thread_key: str = Field(default="", max_length=128)
    message_id: str = Field(max_length=128)
    author_id: str = Field(max_length=128)
    author: str = Field(max_length=255)
    text: str = Field(sa_column=Column(Text, nullable=False))
    observed_at: datetime = timestamp()
