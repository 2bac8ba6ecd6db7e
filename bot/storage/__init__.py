"""Persistence: tables, the database handle, repositories and migrations."""

from bot.storage.database import Database
from bot.storage.migrate import migrate
from bot.storage.repository import ConversationInfo, ConversationStore
from bot.storage.rows import StoredMessage, UsageEntry

__all__ = [
    "ConversationInfo",
    "ConversationStore",
    "Database",
    "StoredMessage",
    "UsageEntry",
    "migrate",
]
