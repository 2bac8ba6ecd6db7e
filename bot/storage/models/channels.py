"""What admins set per channel (tools, pictures, suggested prompts), and feedback on
answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp


class ChannelTool(SQLModel, table=True):
    """An admin's choice for one tool (or `mcp:<server>`, all of its tools) in one channel.

    No row: the defaults from settings apply."""

    __tablename__ = "channel_tools"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    tool: str = Field(primary_key=True, max_length=128)
    enabled: bool
    changed_by: str = Field(default="", max_length=160)
    changed_at: datetime = timestamp()


# -- Pictures (docs/media.md) ---------------------------------------------------------


class ChannelMedia(SQLModel, table=True):
    """Whether a channel's model is shown pictures, as an admin set it for that channel.

    No row, or `vision` None: PARLEY_LLM_VISION applies."""

    __tablename__ = "channel_media"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    vision: bool | None = Field(default=None)
    changed_at: datetime = timestamp()


class ChannelPrompts(SQLModel, table=True):
    """The suggested prompts an admin set for a channel (Slack shows them when a
    conversation with Parley opens); none: the app's defaults."""

    __tablename__ = "channel_prompts"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    prompts: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    changed_at: datetime = timestamp()


# -- feedback on answers (issue 17) ----------------------------------------------------


class AnswerFeedback(SQLModel, table=True):
    """A person's thumbs up or down on one of Parley's answers: who (`voter`, platform
    qualified), which answer (the platform's message id in `chat`, and its text as the
    press carried it), up or down, when. One row per answer and person: a second press
    of theirs changes nothing."""

    __tablename__ = "answer_feedback"
    __table_args__ = (
        UniqueConstraint("platform", "chat", "message_ref", "voter"),
        Index("ix_answer_feedback_platform_chat_created_at", "platform", "chat", "created_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    platform: str = Field(max_length=32)
    chat: str = Field(max_length=128)
    message_ref: str = Field(max_length=128)
    voter: str = Field(max_length=160)
    helpful: bool
    answer: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = timestamp()
