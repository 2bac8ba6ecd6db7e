"""`AdminStore`: what the console and the policy ask of the database, in one handle.

Channel settings and tool choices (channels.py), the audit trail (audit.py), usage and the
console's lists (reports.py).
"""

from __future__ import annotations

from bot.storage.audit import AuditStore
from bot.storage.channels import LIMIT_KEYS, ChannelConfig, ChannelRow, ChannelStore
from bot.storage.reports import PAGE_SIZE, Page, ReportStore

__all__ = [
    "LIMIT_KEYS",
    "PAGE_SIZE",
    "AdminStore",
    "ChannelConfig",
    "ChannelRow",
    "Page",
]


class AdminStore(ChannelStore, AuditStore, ReportStore):
    """One store for the three: built with `ChannelStore`'s arguments (its cache)."""
