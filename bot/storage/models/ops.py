"""The service's own records: reminders, sent emails, leases, the audit log, console
sessions and one row per finished turn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel

from bot.storage.models.base import BigIntId, timestamp


class Reminder(SQLModel, table=True):
    """A reminder or scheduled follow-up: the source of truth the scheduler rebuilds from.

    `due_at` is the next time it is due (UTC); `retry_at` is set while a failed delivery
    waits for its next attempt. A recurring reminder keeps its `cron` rule in `timezone`
    and moves `due_at` forward after each delivery.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_status_due_at", "status", "due_at"),
        # The scheduler picks up reminders created since its last look every few seconds.
        Index("ix_reminders_status_created_at", "status", "created_at"),
    )

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
    created_at: datetime = timestamp()


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
    # What the server said of each recipient: {address: "accepted"} or the refusal
    # ("550 5.1.1 mailbox unknown"); empty when nothing reached the RCPT stage.
    recipient_results: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    created_at: datetime = timestamp(index=True)


class Lease(SQLModel, table=True):
    """A named lease one replica holds until `expires_at` (the scheduler leader)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class AuditEntry(SQLModel, table=True):
    """Who did what, where, when and from which surface (also refused attempts)."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None, sa_column=Column(BigIntId, primary_key=True, autoincrement=True)
    )
    created_at: datetime = timestamp(index=True)
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
    created_at: datetime = timestamp()
    seen_at: datetime = timestamp()
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
    finished_at: datetime = timestamp(index=True)
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
