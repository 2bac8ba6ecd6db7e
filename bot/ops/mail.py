"""Outgoing email: `SMTPMailer` sends plain text with aiosmtplib and records every attempt.

It is the `Mailer` the email tool gets. It refuses recipients off the allow-list
(`PARLEY_EMAIL_ALLOWLIST`: addresses, or `@domain` for a whole domain; empty means email
is off), refuses header injection, and writes one `sent_emails` row per attempt with what
the server said of each recipient, so the audit trail says who asked, to whom, when, which
Message-ID, and who did not get it.

A server may accept some recipients and refuse others: the message then goes to those it
accepted, and the receipt (and the row) names the refused ones with the server's reason.
When nobody gets it, the failure is classified (`MailFailure`: a refused recipient, relay
denied, the login, TLS or the certificate, unreachable, a timeout, the message refused),
and the `ToolError` carries a sentence for people in the asker's language plus the class
as JSON for the model, which can tell "try again later" from "an operator must act".
"""

from __future__ import annotations

import enum
import json
import logging
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from bot.config import EmailSettings
from bot.domain import ChatRef, MailReceipt, UserRef
from bot.errors import ConfigError, ToolError
from bot.i18n import N_, _
from bot.storage.emails import EmailLog

log = logging.getLogger(__name__)

MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 20_000
MAX_REPLY_CHARS = 200  # of a server's reply kept per recipient (it is the server's text)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def allowed(address: str, allowlist: Sequence[str]) -> bool:
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    return any(
        address == entry or (entry.startswith("@") and domain == entry[1:]) for entry in allowlist
    )


class MailFailure(enum.StrEnum):
    """Why an email reached nobody, as far as the client can tell."""

    REFUSED_RECIPIENT = "refused_recipient"  # the server refused every recipient
    RELAY_DENIED = "relay_denied"  # the server will not carry mail there for this bot
    AUTHENTICATION = "authentication"  # the login was refused or impossible
    TLS = "tls"  # the certificate is not trusted, or TLS could not start
    UNREACHABLE = "unreachable"  # no connection to the server
    TIMEOUT = "timeout"  # the server stopped answering
    REJECTED = "rejected"  # the sender or the message itself was refused


# What people are told, in their language; `{host}`, `{detail}` and `{refused}` filled.
_SENTENCES: dict[MailFailure, str] = {
    MailFailure.REFUSED_RECIPIENT: N_(
        "The email was not sent: the mail server refused every recipient ({refused})."
    ),
    MailFailure.RELAY_DENIED: N_(
        "The email was not sent: the mail server {host} does not relay mail to {refused} for "
        "this bot. An operator must allow it there or use another SMTP server."
    ),
    MailFailure.AUTHENTICATION: N_(
        "The email was not sent: the mail server {host} refused the bot's login ({detail}). "
        "An operator must check SMTP_USERNAME and SMTP_PASSWORD."
    ),
    MailFailure.TLS: N_(
        "The email was not sent: a secure connection to the mail server {host} failed "
        "({detail}). An operator must check SMTP_TLS, or trust the server's private "
        "certificate authority with PARLEY_SMTP_CA_FILE."
    ),
    MailFailure.UNREACHABLE: N_(
        "The email was not sent: the mail server {host} could not be reached. Nothing was "
        "delivered; try again later or tell an operator."
    ),
    MailFailure.TIMEOUT: N_(
        "The email was not sent: the mail server {host} did not answer in time. Nothing was "
        "delivered; try again later or tell an operator."
    ),
    MailFailure.REJECTED: N_(
        "The email was not sent: the mail server {host} refused it ({detail})."
    ),
}
_MAYBE_DELIVERED = N_(
    "The email may or may not have been sent: the mail server {host} stopped answering "
    "while it was being sent. Check with the recipients before sending it again."
)
# Whether sending again later can help, for the model.
_TRANSIENT = {MailFailure.UNREACHABLE, MailFailure.TIMEOUT}


@dataclass(frozen=True)
class MailProblem:
    """A classified failure: its class, the server's or the library's words, and the
    recipients the server refused (address: reply)."""

    kind: MailFailure
    detail: str
    refused: Mapping[str, str] = field(default_factory=dict)
    # The server stopped answering after the message began: it may have been delivered.
    maybe_delivered: bool = False


def server_reply(code: int, message: str) -> str:
    """A server's reply as one bounded line (it is untrusted text)."""
    text = _CONTROL.sub(" ", f"{code} {message}").strip()
    return text[:MAX_REPLY_CHARS]


def is_relay_denial(reply: str) -> bool:
    """Whether a refused recipient's reply says "not relayed for you" (5.7.1, "relay")
    rather than "no such mailbox" (5.1.1)."""
    return " 5.7.1 " in f" {reply} " or "relay" in reply.lower()


def classify(exc: BaseException) -> MailProblem:
    """The class of an aiosmtplib (or socket) failure, with a readable detail."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = {each.recipient: server_reply(each.code, each.message) for each in exc.recipients}
        kind = (
            MailFailure.RELAY_DENIED
            if refused and all(is_relay_denial(reply) for reply in refused.values())
            else MailFailure.REFUSED_RECIPIENT
        )
        return MailProblem(kind, "; ".join(refused.values()), refused)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        reply = server_reply(exc.code, exc.message)
        kind = MailFailure.RELAY_DENIED if is_relay_denial(reply) else MailFailure.REFUSED_RECIPIENT
        return MailProblem(kind, reply, {exc.recipient: reply})
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return MailProblem(MailFailure.AUTHENTICATION, server_reply(exc.code, exc.message))
    if (tls := _tls_cause(exc)) is not None:
        return MailProblem(MailFailure.TLS, tls)
    message = str(exc)
    if isinstance(exc, aiosmtplib.SMTPException) and "AUTH" in message:
        # "SMTP AUTH extension not supported by server": often AUTH only after STARTTLS.
        return MailProblem(MailFailure.AUTHENTICATION, message[:MAX_REPLY_CHARS])
    if isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS" in message:
        return MailProblem(MailFailure.TLS, message[:MAX_REPLY_CHARS])
    if isinstance(exc, TimeoutError):  # SMTPTimeoutError and its connect twin too
        during_message = not isinstance(exc, aiosmtplib.SMTPConnectError)
        return MailProblem(
            MailFailure.TIMEOUT, message[:MAX_REPLY_CHARS], maybe_delivered=during_message
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException) and not isinstance(
        exc, aiosmtplib.SMTPConnectResponseError
    ):
        return MailProblem(MailFailure.REJECTED, server_reply(exc.code, exc.message))
    return MailProblem(MailFailure.UNREACHABLE, message[:MAX_REPLY_CHARS])


def _tls_cause(exc: BaseException) -> str | None:
    """The TLS failure behind `exc`, if any (aiosmtplib wraps it in a connect error)."""
    seen: BaseException | None = exc
    for _depth in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate not trusted: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or seen}"
        seen = seen.__cause__ or seen.__context__
    return None


def tls_context(settings: EmailSettings) -> ssl.SSLContext | None:
    """The system's trust store plus `PARLEY_SMTP_CA_FILE`, when that is set (else
    aiosmtplib's own default context)."""
    if settings.ca_file is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"PARLEY_SMTP_CA_FILE={settings.ca_file}: not a readable PEM certificate file "
            f"({getattr(exc, 'strerror', None) or exc})"
        ) from None
    return context


class SMTPMailer:
    """Sends through the SMTP server of `EmailSettings`; one connection per message."""

    def __init__(self, settings: EmailSettings, emails: EmailLog) -> None:
        self.settings = settings
        self.emails = emails
        self._tls_context = tls_context(settings)

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
    ) -> MailReceipt:
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
        try:
            errors, _reply = await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                use_tls=settings.tls == "tls",
                start_tls=settings.tls == "starttls",
                tls_context=self._tls_context,
                username=settings.username or None,
                password=settings.password.get_secret_value() if settings.password else None,
                timeout=settings.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            problem = classify(exc)
            log.warning("email to %s failed (%s): %s", ", ".join(to), problem.kind, problem.detail)
            results = {address: problem.refused.get(address, "") for address in to}
            await self.emails.record(
                requester,
                chat,
                to,
                subject,
                message_id,
                error=f"{problem.kind}: {problem.detail}",
                recipient_results={k: v for k, v in results.items() if v},
            )
            raise ToolError(self._explain(problem)) from None
        refused = {
            address: server_reply(reply.code, reply.message) for address, reply in errors.items()
        }
        sent_to = tuple(address for address in to if address not in refused)
        await self.emails.record(
            requester,
            chat,
            to,
            subject,
            message_id,
            error="",
            recipient_results={address: refused.get(address, "accepted") for address in to},
        )
        if refused:
            log.warning(
                "email %s sent to %s but refused for %s",
                message_id,
                ", ".join(sent_to),
                "; ".join(f"{address} ({reply})" for address, reply in refused.items()),
            )
        else:
            log.info(
                "email %s sent to %s for %s", message_id, ", ".join(to), requester.qualified_id
            )
        note = ""
        if refused:
            note = _(
                "Sent to {sent}, but the mail server refused {refused}.",
                sent=", ".join(sent_to),
                refused="; ".join(f"{address} ({reply})" for address, reply in refused.items()),
            )
        return MailReceipt(message_id, sent_to, refused, note)

    def _explain(self, problem: MailProblem) -> str:
        """A sentence for people (the asker's language), then the failure for the model."""
        refused = ", ".join(f"{address}: {reply}" for address, reply in problem.refused.items())
        template = _MAYBE_DELIVERED if problem.maybe_delivered else _SENTENCES[problem.kind]
        sentence = _(
            template,
            host=self.settings.host,
            detail=problem.detail,
            refused=refused or problem.detail,
        )
        structured = {
            "status": "not_sent",
            "error": str(problem.kind),
            "server_reply": problem.detail,
            "refused": dict(problem.refused),
            "retry_may_help": problem.kind in _TRANSIENT and not problem.maybe_delivered,
            "maybe_delivered": problem.maybe_delivered,
        }
        return f"{sentence}\n{json.dumps(structured, ensure_ascii=False)}"
