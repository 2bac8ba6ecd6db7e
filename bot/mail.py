"""Outgoing email: `SMTPMailer` sends plain text with aiosmtplib and records every attempt.

It is the `Mailer` the email tool gets. It refuses recipients off the allow-list
(`PARLEY_EMAIL_ALLOWLIST`: addresses, or `@domain` for a whole domain; empty means email
is off), refuses header injection, and writes one `sent_emails` row per attempt (sent or
failed), so the audit trail says who asked, to whom, when and with which Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.config import EmailSettings
from bot.domain import ChatRef, UserRef
from bot.errors import ToolError
from bot.storage.emails import EmailLog

log = logging.getLogger(__name__)

MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 20_000


def allowed(address: str, allowlist: Sequence[str]) -> bool:
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    return any(
        address == entry or (entry.startswith("@") and domain == entry[1:]) for entry in allowlist
    )


class SMTPMailer:
    """Sends through the SMTP server of `EmailSettings`; one connection per message."""

    def __init__(self, settings: EmailSettings, emails: EmailLog) -> None:
        self.settings = settings
        self.emails = emails

    def refusal(self, recipients: Sequence[str]) -> str | None:
        settings = self.settings
        if not settings.host or not settings.sender:
            return (
                "Email is not set up on this bot: an operator must set SMTP_HOST and SMTP_FROM "
                "(and SMTP_PORT, SMTP_TLS, SMTP_USERNAME, SMTP_PASSWORD as the server needs)."
            )
        allowlist = settings.allowed_recipients
        if not allowlist:
            return (
                "Email is switched off: no recipient is allowed yet. An operator can allow "
                "addresses or whole domains with PARLEY_EMAIL_ALLOWLIST, e.g. "
                "PARLEY_EMAIL_ALLOWLIST=alice@example.com,@example.org"
            )
        refused = [address for address in recipients if not allowed(address, allowlist)]
        if refused:
            return (
                f"Not allowed to email {', '.join(refused)}: only addresses on the bot's "
                f"allow-list may receive email ({', '.join(allowlist)}). "
                "An operator can extend PARLEY_EMAIL_ALLOWLIST."
            )
        return None

    async def send(
        self, requester: UserRef, chat: ChatRef, to: Sequence[str], subject: str, body: str
    ) -> str:
        refusal = self.refusal(to)
        if refusal:
            raise ToolError(refusal)
        if any(ch in value for value in (subject, *to) for ch in "\r\n"):
            raise ToolError("The subject and addresses must be single lines.")
        if len(subject) > MAX_SUBJECT_CHARS or len(body) > MAX_BODY_CHARS:
            raise ToolError(
                f"Too long: at most {MAX_SUBJECT_CHARS} characters of subject and "
                f"{MAX_BODY_CHARS} of body."
            )
        settings = self.settings
        message = EmailMessage()
        message["From"] = settings.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
        message["X-Parley-Requested-By"] = requester.qualified_id
        message.set_content(body)
        message_id = str(message["Message-ID"])
        error = ""
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                use_tls=settings.tls == "tls",
                start_tls=settings.tls == "starttls",
                username=settings.username or None,
                password=settings.password.get_secret_value() if settings.password else None,
                timeout=settings.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("email to %s failed: %s", ", ".join(to), error)
        await self.emails.record(requester, chat, to, subject, message_id, error)
        if error:
            raise ToolError(
                f"The email was not sent: the mail server ({settings.host}) could not be reached "
                "or refused it. Nothing was delivered; try again later or tell an operator."
            )
        log.info("email %s sent to %s for %s", message_id, ", ".join(to), requester.qualified_id)
        return message_id
