"""An approval question asked by one `parley run` and answered on another: two real
processes on one database (SQLite and PostgreSQL), Telegram webhooks, real SMTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.databases import fresh_postgres_database
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import SMTPServer
from tests.fakes.telegram_server import (
    TOKEN,
    FakeTelegramServer,
    callback_update,
    private_message,
)
from tests.processes import Run, ready_run

SECRET = "approvals-webhook-secret"
HOOK = "https://parley.example.test/telegram/hook"
ALICE = 77
MAIL = {"to": ["ops@example.com"], "subject": "Standup", "body": "See you at nine."}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    import asyncio

    server = request.getfixturevalue("postgres_url")
    manager = fresh_postgres_database(server)
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(manager.__aenter__())
        yield url.replace("postgresql+asyncpg://", "postgresql://")
        loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


def replica(
    directory: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    smtp: SMTPServer,
) -> tuple[Run, str]:
    directory.mkdir()
    return ready_run(
        directory,
        DATABASE_URL=database_url,
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
        PARLEY_TELEGRAM_WEBHOOK_URL=HOOK,
        PARLEY_TELEGRAM_WEBHOOK_SECRET=SECRET,
        PARLEY_DEFAULT_TOOLS_DM="all,send_email",
        SMTP_HOST=smtp.host,
        SMTP_PORT=str(smtp.port),
        SMTP_TLS="none",
        SMTP_FROM="parley@bot.example.com",
        PARLEY_EMAIL_ALLOWLIST="@example.com",
        PARLEY_APPROVAL_POLL_SECONDS="0.2",
    )


def wait(condition: object, what: str, runs: list[Run], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            logs = "\n---\n".join(run.output()[1][-3000:] for run in runs)
            raise AssertionError(f"{what} did not happen within {within} s:\n{logs}")
        time.sleep(0.05)


@pytest.mark.timeout(240)  # two processes start on a busy machine
def test_a_question_asked_on_one_replica_is_answered_on_another(
    tmp_path: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    smtp_server: SMTPServer,
) -> None:
    llm.script(tool_call_reply(("send_email", MAIL)), text_reply("Sent it."))
    runs: list[Run] = []
    try:
        run_a, url_a = replica(tmp_path / "a", database_url, llm, telegram, smtp_server)
        runs.append(run_a)
        run_b, url_b = replica(tmp_path / "b", database_url, llm, telegram, smtp_server)
        runs.append(run_b)
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        with httpx.Client(timeout=10) as client:
            asked = client.post(
                f"{url_a}/telegram/hook",
                json={"update_id": 901, **private_message(ALICE, "mail ops the standup")},
                headers=headers,
            )
            assert asked.status_code == 200

            def question() -> list[str]:
                found = []
                for call in telegram.calls_of("sendMessage"):
                    markup = call.params.get("reply_markup")
                    if markup:
                        markup = json.loads(markup) if isinstance(markup, str) else markup
                        found += [b["callback_data"] for b in markup["inline_keyboard"][0]]
                return found

            wait(lambda: question(), "the question", runs)
            once = next(data for data in question() if data.endswith(":o"))
            chat = {"id": ALICE, "type": "private", "first_name": "Alice"}
            # Someone else's press on replica B is refused; the asker's is taken.
            client.post(
                f"{url_b}/telegram/hook",
                json={"update_id": 902, **callback_update(chat, 5000, 78, once)},
                headers=headers,
            )
            wait(lambda: telegram.calls_of("answerCallbackQuery"), "the refusal", runs)
            assert smtp_server.messages == []
            client.post(
                f"{url_b}/telegram/hook",
                json={"update_id": 903, **callback_update(chat, 5000, ALICE, once)},
                headers=headers,
            )
            wait(lambda: len(smtp_server.messages) == 1, "the email", runs)
            wait(
                lambda: "Sent it." in telegram.sent_texts(),
                "the answer",
                runs,
            )
    finally:
        logs = [run.stop()[1] for run in runs]
    answers = [c.params for c in telegram.calls_of("answerCallbackQuery")]
    assert "not yours" in answers[0]["text"] and "Approved once" in answers[1]["text"]
    edited = [c.params["text"] for c in telegram.calls_of("editMessageText")]
    assert any(text.endswith("Approved once.") for text in edited)  # A closed its question
    assert all("Traceback" not in log for log in logs), logs
