"""Durable turns, their tool call journal, and budget reservations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp

# -- durable turns (issue 15) ------------------------------------------------------------


class TurnState:
    """The states of a `turns` row: claimed by a process, running in the engine, done once
    its final reply was delivered, or lost (too old to resume: its user was told)."""

    CLAIMED = "claimed"
    RUNNING = "running"
    DONE = "done"
    LOST = "lost"
    OPEN = (CLAIMED, RUNNING)


class Turn(SQLModel, table=True):
    """A turn's claim and input: enough to run it again after its process died.

    `holder` names the lease (`leases.name`) of the process running it; when that lease
    has expired and the turn is not done, the scheduler leader resumes it (or, past the
    resume window, tells its user it was lost). `reply` is the platform's reply address
    (JSON the adapter wrote and reads back), `preview` the message the platform showed
    the half-written answer in, if any, so a resume finishes or replaces it."""

    __tablename__ = "turns"
    __table_args__ = (
        UniqueConstraint("platform", "bot", "event_id"),
        # The resume sweep looks for open turns only.
        Index("ix_turns_state_holder", "state", "holder"),
        # The hourly prune forgets finished turns by age.
        Index("ix_turns_state_updated_at", "state", "updated_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    platform: str = Field(max_length=32)
    bot: str = Field(default="", max_length=64)
    event_id: str = Field(max_length=255)
    holder: str = Field(max_length=128)
    state: str = Field(default=TurnState.CLAIMED, max_length=16)
    attempts: int = 1
    chat_id: str = Field(max_length=128)
    chat_kind: str = Field(max_length=16)
    chat_title: str = Field(default="", max_length=255)
    thread_key: str = Field(default="", max_length=128)
    user_id: str = Field(max_length=128)
    user_name: str = Field(default="", max_length=255)
    text: str = Field(sa_column=Column(Text, nullable=False))
    platform_message_id: str = Field(default="", max_length=128)
    reply: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    preview: str = Field(default="", max_length=128)
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class ToolCallRecord(SQLModel, table=True):
    """The journal of one side-effecting tool call of a turn, written before it runs and
    settled (result) after, so a resumed turn never runs it twice (bot/turn/durable.py)."""

    __tablename__ = "tool_call_journal"

    turn_id: int = Field(sa_column=Column(BigIntId, primary_key=True))
    round: int = Field(primary_key=True)
    position: int = Field(primary_key=True)
    tool: str = Field(max_length=128)
    arguments_digest: str = Field(max_length=64)
    settled: bool = False
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    is_error: bool = False
    started_at: datetime = timestamp()
    settled_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


# -- budget reservations (issue 15) ----------------------------------------------------


class BudgetReservation(SQLModel, table=True):
    """One admitted turn: its token estimate, held against the user's and channel's
    budgets until the turn settles (its real usage is then in `usage`). A row also counts
    towards the rate limit for a minute after it was made, and towards the turns in flight
    while unsettled; `expires_at` is when it stops counting at all (a crashed process's
    reservation expires by itself) and may be deleted. `holder` names the lease of the
    process running the turn (`leases.name`): the sweep that resumes a dead process's
    turns settles its reservations, so a resumed turn reserves anew."""

    __tablename__ = "budget_reservations"
    __table_args__ = (
        Index("ix_budget_reservations_user_id_created_at", "user_id", "created_at"),
        Index("ix_budget_reservations_channel_id_settled_at", "channel_id", "settled_at"),
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    user_id: int = Field(foreign_key="users.id")
    channel_id: int = Field(foreign_key="channels.id")
    tokens: int
    created_at: datetime = timestamp()
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    settled_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    holder: str | None = Field(default=None, max_length=128, index=True)
