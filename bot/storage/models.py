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
    created_at: datetime = _timestamp()
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
    # What the server said of each recipient: {address: "accepted"} or the refusal
    # ("550 5.1.1 mailbox unknown"); empty when nothing reached the RCPT stage.
    recipient_results: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
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
    created_at: datetime = _timestamp()


class ConversationSummary(SQLModel, table=True):
    """What the model is told of a conversation's older part: a summary of every message
    up to `through_message_id`. An empty text is a watermark (the user asked Parley to
    forget something: older messages are never summarised again)."""

    __tablename__ = "conversation_summaries"

    conversation_id: int = Field(foreign_key="conversations.id", primary_key=True)
    through_message_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    tokens: int = 0
    updated_at: datetime = _timestamp()


# -- Pictures (docs/media.md) ---------------------------------------------------------


class ChannelMedia(SQLModel, table=True):
    """Whether a channel's model is shown pictures, as an admin set it for that channel.

    No row, or `vision` None: PARLEY_LLM_VISION applies."""

    __tablename__ = "channel_media"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    vision: bool | None = Field(default=None)
    changed_at: datetime = _timestamp()


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
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


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
    started_at: datetime = _timestamp()
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
    created_at: datetime = _timestamp()
    expires_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    settled_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    holder: str | None = Field(default=None, max_length=128, index=True)


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
    created_at: datetime = _timestamp()


class ChannelPrompts(SQLModel, table=True):
    """The suggested prompts an admin set for a channel (Slack shows them when a
    conversation with Parley opens); none: the app's defaults."""

    __tablename__ = "channel_prompts"

    channel_id: int = Field(foreign_key="channels.id", primary_key=True)
    prompts: list[dict[str, str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    changed_at: datetime = _timestamp()
