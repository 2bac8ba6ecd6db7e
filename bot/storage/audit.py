"""`AuditStore`: who did what to the settings, written once and listed for the console."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select as sa_select

from bot.storage.database import Database
from bot.storage.models import AuditEntry, utcnow
from bot.storage.reports import Page, page_of


class AuditStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        place: str = "",
        surface: str = "",
        allowed: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.write() as session:
            session.add(
                AuditEntry(
                    actor=actor,
                    action=action,
                    place=place,
                    surface=surface,
                    allowed=allowed,
                    details=details or {},
                    created_at=utcnow(),
                )
            )

    async def audit_page(self, page: int = 1) -> Page:
        a = AuditEntry.__table__.c  # type: ignore[attr-defined]
        query = sa_select(a).order_by(a.id.desc())
        return await page_of(self.db, query, page)
