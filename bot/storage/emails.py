"""`EmailLog`: the `sent_emails` rows of the email tool and their audit entries."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import ChatRef, UserRef
from bot.storage.database import Database
from bot.storage.models import AuditEntry, SentEmail


class EmailLog:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def record(
        self,
        requester: UserRef,
        chat: ChatRef,
        to: Sequence[str],
        subject: str,
        message_id: str,
        error: str,
        recipient_results: dict[str, str] | None = None,
    ) -> None:
        """One email the tool tried to send, in `sent_emails` and in the admins' audit
        log, in one transaction. `error` empty: the server took it, for every recipient
        whose `recipient_results` entry is "accepted" (the others hold the server's
        refusal: the email is then "partly_sent")."""
        results = dict(recipient_results or {})
        refused = {address: reply for address, reply in results.items() if reply != "accepted"}
        status = "failed" if error else "partly_sent" if refused else "sent"
        async with self.db.write() as session:
            session.add(
                SentEmail(
                    requested_by=requester.qualified_id,
                    chat=f"{chat.platform}:{chat.platform_chat_id}",
                    recipients=", ".join(to),
                    subject=subject,
                    message_id=message_id if not error else "",
                    status=status,
                    error=error[:1000],
                    recipient_results=results,
                )
            )
            session.add(
                AuditEntry(
                    actor=requester.qualified_id,
                    action=f"email.{status}",
                    place=f"{chat.platform}:{chat.platform_chat_id}",
                    surface=chat.platform,
                    allowed=not error,
                    details={
                        "recipients": list(to),
                        "subject": subject[:200],
                        "message_id": message_id if not error else "",
                        **({"error": error[:500]} if error else {}),
                        **({"refused": refused} if refused else {}),
                    },
                )
            )
