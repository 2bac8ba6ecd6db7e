"""`FeedbackStore`: thumbs up and down on answers, counted once per answer and person."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.storage.database import Database
from bot.storage.models import AnswerFeedback

ANSWER_CHARS = 4000  # how much of the answer a row keeps: enough to recognise it


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def record(
        self,
        *,
        platform: str,
        chat: str,
        message_ref: str,
        voter: str,
        helpful: bool,
        answer: str,
    ) -> bool:
        """Store one press; False if this person already rated this answer (the first
        press stands: a double click or a re-delivered press counts once)."""
        try:
            async with self.db.write() as session:
                session.add(
                    AnswerFeedback(
                        platform=platform,
                        chat=chat,
                        message_ref=message_ref,
                        voter=voter,
                        helpful=helpful,
                        answer=answer[:ANSWER_CHARS],
                    )
                )
        except IntegrityError:
            return False
        return True

    async def of_chat(self, platform: str, chat: str, limit: int = 50) -> Sequence[AnswerFeedback]:
        """The chat's newest feedback first."""
        async with self.db.read() as session:
            rows = await session.exec(
                select(AnswerFeedback)
                .where(AnswerFeedback.platform == platform, AnswerFeedback.chat == chat)
                .order_by(col(AnswerFeedback.created_at).desc(), col(AnswerFeedback.id).desc())
                .limit(limit)
            )
            return rows.all()
