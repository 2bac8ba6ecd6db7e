"""Approval questions, standing grants and admins' rules (bot/approvals/gate.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp

# -- approvals (bot/approvals/gate.py) ---------------------------------------------------------


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
    created_at: datetime = timestamp()
    seen_at: datetime = timestamp()
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
    created_at: datetime = timestamp()


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
    set_at: datetime = timestamp()


class ApprovalTrust(SQLModel, table=True):
    """An admin's relaxation for one tool in one channel: a call of it that follows
    words from outside (someone else's message, a web result) asks no more than usual."""

    __tablename__ = "approval_trust"
    __table_args__ = (UniqueConstraint("channel_id", "tool"),)

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    channel_id: int
    tool: str = Field(max_length=64)
    set_by: str = Field(max_length=160)
    set_at: datetime = timestamp()
