"""`TraceEraser`: the user's words kept outside their conversations, erased.

The console's erase deletes a user's memory, summaries and messages (`MemoryStore`) and
blanks their turns' inputs (`TurnStore`); their words are also in the approval cards
they were asked (the tool call and the whole card), the emails they had sent (subject,
recipients and each recipient's server reply, in `sent_emails` and in the audit log's
details of their own actions), their reminders' text, the answers they rated and what
they said in groups that Parley observed (opt-in group context: deleted). Rows
stay where something counts them (emails sent, the audit trail, approvals answered);
only the words go. A pending reminder is cancelled: it has nothing left to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, update

from bot.storage.database import Database
from bot.storage.models import (
    AnswerFeedback,
    ApprovalRequest,
    AuditEntry,
    ObservedMessage,
    Reminder,
    SentEmail,
)

_APPROVALS = ApprovalRequest.__table__  # type: ignore[attr-defined]
_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
_EMAILS = SentEmail.__table__  # type: ignore[attr-defined]
_FEEDBACK = AnswerFeedback.__table__  # type: ignore[attr-defined]
_REMINDERS = Reminder.__table__  # type: ignore[attr-defined]
_OBSERVED = ObservedMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ErasedTraces:
    approvals: int
    emails: int
    reminders: int
    feedback: int
    audit: int
    observed: int = 0


class TraceEraser:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def erase(self, user_id: int, qualified_id: str) -> ErasedTraces:
        """Blank (or delete) what the user `user_id` (`platform:id`) wrote outside their
        conversations, in one transaction; how many rows of each kind."""

        def work(connection: Connection) -> ErasedTraces:
            approvals = connection.execute(
                update(_APPROVALS)
                .where(_APPROVALS.c.asker == qualified_id)
                .values(call="", full_text="")
            ).rowcount
            emails = connection.execute(
                update(_EMAILS)
                .where(_EMAILS.c.requested_by == qualified_id)
                .values(recipients="", subject="", error="", recipient_results={})
            ).rowcount
            connection.execute(
                update(_REMINDERS)
                .where(_REMINDERS.c.user_id == user_id, _REMINDERS.c.status == "pending")
                .values(status="cancelled", retry_at=None)
            )
            reminders = connection.execute(
                update(_REMINDERS)
                .where(_REMINDERS.c.user_id == user_id)
                .values(text="", last_error="")
            ).rowcount
            feedback = connection.execute(
                delete(_FEEDBACK).where(_FEEDBACK.c.voter == qualified_id)
            ).rowcount
            audit = connection.execute(
                update(_AUDIT).where(_AUDIT.c.actor == qualified_id).values(details={})
            ).rowcount
            platform, _, platform_user = qualified_id.partition(":")
            observed = connection.execute(
                delete(_OBSERVED).where(
                    _OBSERVED.c.platform == platform, _OBSERVED.c.author_id == platform_user
                )
            ).rowcount
            return ErasedTraces(
                int(approvals),
                int(emails),
                int(reminders),
                int(feedback),
                int(audit),
                int(observed),
            )

        return await self.db.run(work)
