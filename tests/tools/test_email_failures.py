"""What an email's failures look like to the user, the model and the audit log, against a
real SMTP server (aiosmtpd) that refuses what real servers refuse."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlmodel import select

from bot.app import Application
from bot.config import Settings
from bot.domain import ToolResult
from bot.errors import ConfigError
from bot.i18n import use_locale
from bot.ops.doctor import CheckFailed, smtp_check
from bot.storage.models import AuditEntry, SentEmail
from tests.apps import AppFactory
from tests.fakes.http import listening_socket
from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.smtp import PASSWORD, USERNAME, SMTPServer, TLSMode
from tests.fakes.surface import RecordingSurface
from tests.tools.helpers import call, context
from tests.tools.test_email import MAIL, email_settings, turn
from tools.email import send_email

TWO = {**MAIL, "to": ["carol@example.com", "bob@example.com"]}
UNKNOWN_BOB = "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "company-ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


def tls_server(authority: trustme.CA, tls: TLSMode) -> SMTPServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return SMTPServer(tls=tls, certificate=context)


async def send(app: Application) -> ToolResult:
    return await call(send_email, MAIL, context(app.engine.services))


def failure(result: ToolResult) -> tuple[str, dict[str, Any]]:
    """The sentence for people and the structured error for the model."""
    assert result.is_error, result.content
    sentence, _, structured = result.content.partition("\n")
    return sentence, json.loads(structured)


async def rows(app: Application) -> tuple[list[SentEmail], list[AuditEntry]]:
    async with app.database.read() as session:
        emails = list((await session.exec(select(SentEmail))).all())
        audit = list((await session.exec(select(AuditEntry))).all())
    return emails, [entry for entry in audit if entry.action.startswith("email.")]


async def test_one_refused_recipient_of_two_is_named_to_the_user_and_in_the_audit_log(
    make_app: AppFactory, llm: ScriptedOpenAIServer, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse["bob@example.com"] = UNKNOWN_BOB
    app = await make_app(email=email_settings(smtp_server))
    surface = RecordingSurface(confirm_answer=True)

    result = json.loads(await turn(app, llm, surface, TWO))

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["carol@example.com"]  # only the accepted one got it
    assert result["status"] == "partly_sent"
    assert result["sent_to"] == ["carol@example.com"]
    assert result["refused"] == {"bob@example.com": UNKNOWN_BOB}
    # What the user sees of the call (Slack's task line, the terminal's result line).
    [(_, shown)] = surface.finished_tools
    assert not shown.is_error
    assert (
        "Sent to carol@example.com, but the mail server refused bob@example.com"
        in (json.loads(shown.content)["message"])
    )
    [row], [entry] = await rows(app)
    assert row.status == "partly_sent"
    assert row.recipient_results == {
        "carol@example.com": "accepted",
        "bob@example.com": UNKNOWN_BOB,
    }
    assert entry.action == "email.partly_sent" and entry.allowed
    assert entry.details["refused"] == {"bob@example.com": UNKNOWN_BOB}


async def test_the_refusal_note_is_in_the_users_language(
    make_app: AppFactory, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse["bob@example.com"] = UNKNOWN_BOB
    app = await make_app(email=email_settings(smtp_server))

    with use_locale("zh-CN"):
        result = await call(send_email, TWO, context(app.engine.services))

    assert "邮件服务器拒绝了" in json.loads(result.content)["message"], result.content


async def test_every_recipient_refused_sends_nothing_and_says_why(
    make_app: AppFactory, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse["carol@example.com"] = "550 5.1.1 <carol@example.com>: User unknown"
    app = await make_app(email=email_settings(smtp_server))

    sentence, error = failure(await send(app))

    assert error["error"] == "refused_recipient" and not error["retry_may_help"]
    assert error["refused"] == {"carol@example.com": "550 5.1.1 <carol@example.com>: User unknown"}
    assert "refused every recipient" in sentence and "User unknown" in sentence
    [row], [entry] = await rows(app)
    assert row.status == "failed" and row.recipient_results == error["refused"]
    assert entry.action == "email.failed" and "refused_recipient" in entry.details["error"]


async def test_relay_denied_is_told_apart_from_an_unknown_mailbox(
    make_app: AppFactory, smtp_server: SMTPServer
) -> None:
    smtp_server.refuse["carol@example.com"] = "554 5.7.1 <carol@example.com>: Relay access denied"
    app = await make_app(email=email_settings(smtp_server))

    sentence, error = failure(await send(app))

    assert error["error"] == "relay_denied"
    assert "does not relay mail" in sentence and "another SMTP server" in sentence


async def test_a_wrong_password_is_an_authentication_failure(
    make_app: AppFactory, smtp_server: SMTPServer
) -> None:
    app = await make_app(
        email=email_settings(smtp_server, username=USERNAME, password="wrong-password")
    )

    sentence, error = failure(await send(app))

    assert error["error"] == "authentication" and error["server_reply"].startswith("535")
    assert "SMTP_USERNAME and SMTP_PASSWORD" in sentence
    assert "wrong-password" not in sentence + json.dumps(error)
    assert smtp_server.messages == []


@pytest.mark.parametrize("tls", ["tls", "starttls"])
async def test_an_untrusted_certificate_is_a_tls_failure_until_its_ca_is_trusted(
    make_app: AppFactory, authority: trustme.CA, ca_file: Path, tls: TLSMode
) -> None:
    with tls_server(authority, tls) as server:
        settings = email_settings(server, tls=tls, username=USERNAME, password=PASSWORD)
        untrusting = await make_app(email=settings)
        trusting = await make_app(email={**settings, "ca_file": ca_file})

        sentence, error = failure(await send(untrusting))
        sent = await send(trusting)

    assert error["error"] == "tls" and "certificate" in error["server_reply"]
    assert "PARLEY_SMTP_CA_FILE" in sentence
    assert not sent.is_error, sent.content
    [received] = server.messages
    assert received.auth == USERNAME and received.rcpt_tos == ["carol@example.com"]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung server)."""
    sock = listening_socket()
    try:
        sock.listen(4)
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


async def test_an_unreachable_server_may_be_retried_later(
    make_app: AppFactory, smtp_server: SMTPServer, closed_port: int
) -> None:
    app = await make_app(email=email_settings(smtp_server, port=closed_port))

    sentence, error = failure(await send(app))

    assert error["error"] == "unreachable" and error["retry_may_help"]
    assert "could not be reached" in sentence


async def test_a_server_that_never_answers_is_a_timeout(
    make_app: AppFactory, smtp_server: SMTPServer, silent_server: int
) -> None:
    app = await make_app(email=email_settings(smtp_server, port=silent_server, timeout_seconds=0.3))

    sentence, error = failure(await send(app))

    assert error["error"] == "timeout" and error["retry_may_help"]
    assert not error["maybe_delivered"]  # it never greeted: nothing can have gone out
    assert "did not answer in time" in sentence


async def test_each_failure_class_has_its_own_sentence(
    make_app: AppFactory, smtp_server: SMTPServer, closed_port: int, silent_server: int
) -> None:
    """Not one catch-all: the user can tell "try later" from "an operator must act"."""
    smtp_server.refuse["carol@example.com"] = "550 5.1.1 User unknown"
    refused = await make_app(email=email_settings(smtp_server))
    wrong_login = await make_app(
        email=email_settings(smtp_server, username=USERNAME, password="nope-nope")
    )
    down = await make_app(email=email_settings(smtp_server, port=closed_port))
    hung = await make_app(
        email=email_settings(smtp_server, port=silent_server, timeout_seconds=0.3)
    )

    sentences = {failure(await send(app))[0] for app in (refused, wrong_login, down, hung)}

    assert len(sentences) == 4, sentences


async def test_doctor_names_the_ca_setting_for_an_untrusted_certificate(
    authority: trustme.CA, ca_file: Path
) -> None:
    with tls_server(authority, "tls") as server:
        settings = Settings.load(
            env_file=None, email={"host": server.host, "port": server.port, "tls": "tls"}
        ).email
        with pytest.raises(CheckFailed) as failed:
            await smtp_check(settings).probe()
        trusted = await smtp_check(settings.model_copy(update={"ca_file": ca_file})).probe()

    assert "certificate not trusted" in failed.value.detail
    assert "PARLEY_SMTP_CA_FILE" in failed.value.fix
    assert "answered" in trusted


async def test_an_unreadable_ca_file_stops_the_start_with_its_name(
    make_app: AppFactory, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-ca.pem"

    with pytest.raises(ConfigError, match=r"PARLEY_SMTP_CA_FILE=.*no-such-ca\.pem"):
        await make_app(email=email_settings(smtp_server, ca_file=missing))
