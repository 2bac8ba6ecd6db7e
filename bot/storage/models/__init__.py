"""The tables (SQLModel), a module per concern. Timestamps are timezone-aware UTC everywhere.

Who talks where (chats.py), the service's own records (ops.py), what admins set per
channel (channels.py), approvals (approvals.py), memory (memory.py), durable turns and
budgets (turns.py), on the shared columns of base.py. Importing this package registers
every table on `SQLModel.metadata` (Alembic's env.py does). Schema changes go through
Alembic (`bot/storage/migrations`), never `create_all`.
"""

from bot.storage.models.approvals import (
    ApprovalGrant,
    ApprovalRequest,
    ApprovalRule,
    ApprovalTrust,
)
from bot.storage.models.base import BigIntId, timestamp, utcnow
from bot.storage.models.channels import AnswerFeedback, ChannelMedia, ChannelPrompts, ChannelTool
from bot.storage.models.chats import (
    Channel,
    Conversation,
    Message,
    ProcessedEvent,
    UsageRecord,
    User,
)
from bot.storage.models.memory import ConversationSummary, MemoryFactRow, ObservedMessage
from bot.storage.models.ops import (
    AuditEntry,
    ConsoleSession,
    Lease,
    Reminder,
    SentEmail,
    TurnRecord,
)
from bot.storage.models.turns import BudgetReservation, ToolCallRecord, Turn, TurnState

__all__ = [
    "AnswerFeedback",
    "ApprovalGrant",
    "ApprovalRequest",
    "ApprovalRule",
    "ApprovalTrust",
    "AuditEntry",
    "BigIntId",
    "BudgetReservation",
    "Channel",
    "ChannelMedia",
    "ChannelPrompts",
    "ChannelTool",
    "ConsoleSession",
    "Conversation",
    "ConversationSummary",
    "Lease",
    "MemoryFactRow",
    "Message",
    "ObservedMessage",
    "ProcessedEvent",
    "Reminder",
    "SentEmail",
    "ToolCallRecord",
    "Turn",
    "TurnRecord",
    "TurnState",
    "UsageRecord",
    "User",
    "timestamp",
    "utcnow",
]
