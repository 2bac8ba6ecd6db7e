"""Email through the engine to a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.app import Application
from bot.approvals.gate import Answer, ApprovalQuestion, Press
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.storage.models import AuditEntry, SentEmail
from tests.apps import AppFactory
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import PASSWORD, USERNAME, SMTPServer
from tests.fakes.surface import RecordingSurface
from tests.tools.helpers import call, context
from tools.email import send_email

ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
GROUP = ChatRef("test", "team", ChatKind.GROUP)
MAIL = {"to": ["carol@example.com"], "subject": "Lunch", "body": "Noon at the usual place?"}


def email_settings(smtp: SMTPServer, **extra: Any) -> dict[str, Any]:
    return {
        "host": smtp.host,
        "port": smtp.port,
        "tls": "none",
        "sender": "parley@bot.example.com",
        "allowlist": "@example.com, Dave@elsewhere.org",
        "timeout_seconds": 2,
        **extra,
    }


async def turn(app: Application, llm: ScriptedOpenAIServer, surface: Any, arguments: Any) -> str:
    llm.script(tool_call_reply(("send_email", arguments)), text_reply("ok"))
    await app.engine.handle(IncomingMessage(chat=GROUP, user=ALICE, text="mail carol"), surface)
    return str(llm.requests[0 if len(llm.requests) < 2 else 1]["messages"][-1]["content"])


async def records(app: Application) -> list[SentEmail]:
    async with app.database.read() as session:
        return list((await session.exec(select(SentEmail))).all())


async def audit(app: Application) -> list[AuditEntry]:
    async with app.database.read() as session:
        rows = list((await session.exec(select(AuditEntry))).all())
    return [row for row in rows if row.action.startswith("email.")]


async def test_a_confirmed_email_arrives_with_the_right_headers_and_body(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server, username=USERNAME, password=PASSWORD))
    seen_before_yes: list[int] = []

    class Watching(RecordingSurface):
        async def confirm(self, user: UserRef, question: str) -> bool:
            seen_before_yes.append(len(smtp_server.messages))
            return await super().confirm(user, question)

    surface = Watching(confirm_answer=True)
    result = await turn(app, llm, surface, MAIL)

    assert seen_before_yes == [0]  # nothing left before the user said yes
    assert surface.confirmations[0][0] == ALICE
    assert "carol@example.com" in surface.confirmations[0][1]
    [received] = smtp_server.messages
    assert received.mail_from == "parley@bot.example.com"
    assert received.rcpt_tos == ["carol@example.com"]
    assert received.auth == USERNAME
    message = received.message
    assert message["From"] == "parley@bot.example.com"
    assert message["To"] == "carol@example.com"
    assert message["Subject"] == "Lunch"
    assert message["X-Parley-Requested-By"] == "test:alice"
    assert message.get_content().strip() == "Noon at the usual place?"
    assert '"status": "sent"' in result and message["Message-ID"] in result
    [row] = await records(app)
    assert (row.requested_by, row.recipients, row.status) == (
        "test:alice",
        "carol@example.com",
        "sent",
    )
    assert row.message_id == message["Message-ID"] and row.chat == "test:team"
    [entry] = await audit(app)
    assert (entry.actor, entry.action, entry.place, entry.allowed) == (
        "test:alice",
        "email.sent",
        "test:team",
        True,
    )
    assert entry.details["recipients"] == ["carol@example.com"]


async def test_nothing_is_sent_when_the_user_declines(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server))
    surface = RecordingSurface(confirm_answer=False)

    result = await turn(app, llm, surface, MAIL)

    assert len(surface.confirmations) == 1
    assert smtp_server.messages == [] and await records(app) == []
    assert "did not confirm" in result


class GroupChatSurface(RecordingSurface):
    """A chat where whoever presses the button is `presser`: a yes counts only from the
    user the question was bound to."""

    def __init__(self, presser: UserRef) -> None:
        super().__init__(confirm_answer=True)
        self.presser = presser

    async def confirm(self, user: UserRef, question: ApprovalQuestion) -> Answer:
        self.confirmations.append((user, question.render(4096).text))
        # The presser's "Approve once" is refused unless they were asked; the question
        # then waits on and ends unanswered.
        pressed = await question._approvals.press(
            question.token, self.presser, Answer.ONCE, surface="test"
        )
        if pressed.result is not Press.ANSWERED:
            return await question.respond(Answer.DENIED)
        return await question.answer()


async def test_a_yes_from_another_user_does_not_send(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server))

    result = await turn(app, llm, GroupChatSurface(presser=BOB), MAIL)

    assert smtp_server.messages == [] and "did not confirm" in result


async def test_a_recipient_off_the_allow_list_is_refused_without_asking(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server))
    surface = RecordingSurface(confirm_answer=True)

    result = await turn(app, llm, surface, {**MAIL, "to": ["mallory@evil.example.net"]})

    assert surface.confirmations == [] and smtp_server.messages == []
    assert "Not allowed to email mallory@evil.example.net" in result


async def test_an_empty_allow_list_refuses_and_says_how_to_configure_it(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server, allowlist=""))

    result = await turn(app, llm, RecordingSurface(), MAIL)

    assert smtp_server.messages == [] and "PARLEY_EMAIL_ALLOWLIST" in result


async def test_header_injection_and_oversize_are_refused(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    app = await make_app(email=email_settings(smtp_server))
    ctx = context(app.engine.services)

    injected = await call(send_email, {**MAIL, "subject": "Hi\r\nBcc: victim@example.com"}, ctx)
    bad_address = await call(send_email, {**MAIL, "to": ["a@example.com\nBcc: b@x.org"]}, ctx)
    huge = await call(send_email, {**MAIL, "body": "x" * 20_001}, ctx)

    assert injected.is_error and "one line" in injected.content
    assert bad_address.is_error and "not plain email addresses" in bad_address.content
    assert huge.is_error and "body" in huge.content
    assert smtp_server.messages == []


@pytest.mark.parametrize("breaker", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x00"])
async def test_a_subject_with_any_line_break_is_refused_before_the_user_is_asked(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer, breaker: str
) -> None:
    app = await make_app(email=email_settings(smtp_server))
    surface = RecordingSurface()

    result = await turn(app, llm, surface, {**MAIL, "subject": f"Hi{breaker}Bcc: x@example.com"})

    assert "one line" in result
    assert surface.confirmations == []  # refused as invalid, never put to the user
    assert smtp_server.messages == []


async def test_smtp_down_gives_a_clear_error_and_is_recorded(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    settings = email_settings(smtp_server)
    smtp_server.__exit__(None, None, None)  # the server goes away
    app = await make_app(email=settings)
    surface = RecordingSurface()

    result = await turn(app, llm, surface, MAIL)

    assert "The email was not sent" in result and "Traceback" not in result
    [row] = await records(app)
    assert row.status == "failed" and row.error
    [entry] = await audit(app)
    assert entry.action == "email.failed" and entry.allowed is False and entry.details["error"]
