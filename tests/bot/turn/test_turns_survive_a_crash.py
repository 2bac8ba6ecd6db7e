"""Durable turns with real `parley run` processes: killed (-9) in the middle of answers,
restarted on the same database (SQLite and PostgreSQL), every question answered once, or
told once that its answer was lost; an email sent just before the kill goes out once.

The crash points are held by the fakes, not timed: the scripted model keeps each stream
open half-way (`hold`), the SMTP server keeps its 250 back (`hold`), and the process
is killed while they wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.storage import Database
from bot.storage.turns import StoredTurn, TurnStore
from bot.turn.durable import LOST_NOTICE, UNSETTLED
from tests.apps import wait_until
from tests.databases import fresh_postgres_database, sqlite_url
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.smtp import SMTPServer
from tests.fakes.telegram_server import (
    BOT_USERNAME,
    TOKEN,
    FakeTelegramServer,
    callback_update,
    group_message,
    private_message,
)
from tests.processes import Run, free_port

HALF = "The first half of an answer that a crash cuts short, word after word after word."
ANSWER = "The resumed answer."
PRIVATE = [4100 + n for n in range(5)]
GROUPS = [-100500 - n for n in range(5)]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database both processes share (PostgreSQL skips without PARLEY_TEST_POSTGRES)."""
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()
        yield sqlite_url(tmp_path / "db")
        return
    server = request.getfixturevalue("postgres_url")
    async with fresh_postgres_database(server) as url:
        yield url


def parley_env(
    database_url: str, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, **extra: str
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": llm.base_url,
        "PARLEY_MODEL": "scripted",
        "PARLEY_LLM_MAX_RETRIES": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "PARLEY_TELEGRAM_BASE_URL": telegram.base_url,
        "PARLEY_PREVIEW_DELAY": "0",
        # A dead process is found out within seconds, not the production quarter minute.
        "PARLEY_TURN_LEASE_SECONDS": "2",
        "PARLEY_TURN_LEASE_RENEW_SECONDS": "0.3",
        "PARLEY_SCHEDULER_LEASE_SECONDS": "2",
        "PARLEY_SCHEDULER_LEASE_RENEW_SECONDS": "0.3",
        "PARLEY_LOG_LEVEL": "INFO",
        **extra,
    }


class Parley:
    """One `parley run` in `directory`, ready once /readyz says so; `kill()` is -9."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.run = Run(directory, PARLEY_HTTP_PORT=str(self.port), **env)
        try:
            self.run.wait_ready(f"http://127.0.0.1:{self.port}/readyz", within=180)
        except BaseException:
            self.run.stop()
            raise

    def kill(self) -> None:
        self.run.process.kill()
        self.run.process.wait()

    def stop(self) -> tuple[str, str]:
        return self.run.stop()


async def open_turns(database_url: str) -> list[StoredTurn]:
    database = Database(database_url)
    try:
        return await TurnStore(database).open_turns()
    finally:
        await database.aclose()


def questions() -> list[tuple[int, dict[str, Any]]]:
    """Ten questions in flight at once: five private chats, five groups."""
    asked = [(chat, private_message(chat, f"question {n}")) for n, chat in enumerate(PRIVATE)]
    for n, chat in enumerate(GROUPS):
        text = f"@{BOT_USERNAME} group question {n}"
        asked.append((chat, group_message(chat, 7700 + n, text)))
    return asked


async def crash_with_ten_turns_in_flight(
    tmp_path: Path, database_url: str, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer
) -> list[tuple[int, dict[str, Any], int]]:
    """Start a process, ask ten questions, kill it -9 while all ten answers stream."""
    llm.set_default(text_reply(HALF))
    llm.hold()
    first = Parley(tmp_path / "first", parley_env(database_url, llm, telegram))
    try:
        asked = [(chat, update, telegram.push(update)) for chat, update in questions()]
        await wait_until(lambda: llm.held == 10, within=120)
        # Mid-stream: each group shows its half-written answer, recorded for the resume.

        async def previews_recorded() -> bool:
            turns = await open_turns(database_url)
            return len(turns) == 10 and sum(1 for t in turns if t.preview) == len(GROUPS)

        await wait_for_async(previews_recorded, within=120)
        for chat in GROUPS:
            [shown] = telegram.shown(chat)
            assert shown and HALF.startswith(shown) and shown != HALF, shown
        first.kill()
    finally:
        llm.release()
        first.stop()
    return asked


async def wait_for_async(predicate: Callable[[], Any], *, within: float) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


def answers_in(telegram: FakeTelegramServer, chat: int, text: str) -> int:
    """How many messages of `chat` show `text` now (private: sent; groups: after edits)."""
    return sum(1 for shown in telegram.shown(chat) if shown == text)


@pytest.mark.timeout(600)
async def test_a_killed_process_s_turns_are_answered_once_after_a_restart(
    tmp_path: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
) -> None:
    asked = await crash_with_ten_turns_in_flight(tmp_path, database_url, llm, telegram)
    before = len(llm.requests)
    llm.set_default(text_reply(ANSWER))
    second = Parley(tmp_path / "second", parley_env(database_url, llm, telegram))
    try:
        # Telegram delivers the same updates again: claimed before, so no second turn.
        for _, update, update_id in asked:
            telegram.push(update, update_id=update_id)

        def all_answered() -> bool:
            return all(answers_in(telegram, chat, ANSWER) >= 1 for chat, _, _ in asked)

        await telegram.wait_for(lambda _: all_answered(), within=90)
        await wait_for_async(lambda: _none_open(database_url), within=30)
        for chat, _, _ in asked:
            assert answers_in(telegram, chat, ANSWER) == 1, telegram.shown(chat)
        for chat in GROUPS:  # the half-written message became the answer, not left behind
            assert telegram.shown(chat) == [ANSWER]
        resumed = llm.requests[before:]
        assert len(resumed) == 10
        for request in resumed:  # each question once, and no stale one beside it
            users = [m["content"] for m in request["messages"] if m["role"] == "user"]
            assert len(users) == 1 and "question" in users[0], users
    finally:
        _, err = second.stop()
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.timeout(600)
async def test_past_the_window_each_user_is_told_once_that_the_answer_was_lost(
    tmp_path: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
) -> None:
    asked = await crash_with_ten_turns_in_flight(tmp_path, database_url, llm, telegram)
    before = len(llm.requests)
    env = parley_env(database_url, llm, telegram, PARLEY_TURN_RESUME_WINDOW_MINUTES="0")
    second = Parley(tmp_path / "second", env)
    try:
        await telegram.wait_for(
            lambda t: all(answers_in(t, chat, LOST_NOTICE) == 1 for chat, _, _ in asked),
            within=90,
        )
        await wait_for_async(lambda: _none_open(database_url), within=30)
        for chat, _, _ in asked:
            assert answers_in(telegram, chat, LOST_NOTICE) == 1
        for chat in GROUPS:
            assert telegram.shown(chat) == [LOST_NOTICE]
        assert len(llm.requests) == before  # nothing was run again
    finally:
        second.stop()


async def _none_open(database_url: str) -> bool:
    return not await open_turns(database_url)


@pytest.mark.timeout(600)
async def test_an_email_sent_right_before_a_kill_goes_out_once(
    tmp_path: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    smtp_server: SMTPServer,
) -> None:
    arguments = {"to": ["bob@example.com"], "subject": "Hello", "body": "Once only."}
    # The first process asks, the resumed one asks the same again, then answers.
    llm.script(
        tool_call_reply(("send_email", arguments)),
        tool_call_reply(("send_email", arguments)),
        text_reply("I tried to send it."),
    )
    env = parley_env(
        database_url,
        llm,
        telegram,
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=str(smtp_server.port),
        SMTP_FROM="parley@example.com",
        SMTP_TLS="none",
        PARLEY_EMAIL_ALLOWLIST="@example.com",
        PARLEY_DEFAULT_TOOLS_DM="all,send_email",
    )
    smtp_server.hold()
    chat = 4242
    first = Parley(tmp_path / "first", env)
    try:
        telegram.push(private_message(chat, "email bob hello"))
        await telegram.wait_for(lambda t: _question(t, chat) is not None, within=120)
        message_id, data = _question(telegram, chat) or (0, "")
        telegram.push(callback_update({"id": chat, "type": "private"}, message_id, chat, data))
        # The mail server has the message and has not said 250: kill now.
        await wait_until(lambda: len(smtp_server.messages) == 1, within=120)
        first.kill()
    finally:
        smtp_server.release()
        first.stop()
    second = Parley(tmp_path / "second", env)
    try:
        await telegram.wait_for(
            lambda t: answers_in(t, chat, "I tried to send it.") == 1, within=90
        )
        await wait_for_async(lambda: _none_open(database_url), within=30)
        assert len(smtp_server.messages) == 1
        # Not asked again (it was confirmed and begun), and the model was told why.
        asked = [c for c in telegram.calls_of("sendMessage") if "reply_markup" in c.params]
        assert len(asked) == 1
        last = json.dumps(llm.requests[-1]["messages"])
        assert UNSETTLED.split(".")[0] in last
    finally:
        second.stop()


def _question(telegram: FakeTelegramServer, chat: int) -> tuple[int, str] | None:
    """The confirmation question in `chat`: (its message id, the Confirm button's data)."""
    for call in telegram.calls_of("sendMessage"):
        markup = call.params.get("reply_markup")
        if int(call.params.get("chat_id", 0)) != chat or not markup:
            continue
        if isinstance(markup, str):
            markup = json.loads(markup)
        button = markup["inline_keyboard"][0][0]
        # The chat's first message (the fake counts from 5000); presses match by token.
        return 5000, str(button["callback_data"])
    return None


@pytest.mark.timeout(600)
async def test_a_killed_turn_s_budget_reservation_does_not_refuse_its_resume_or_the_next(
    tmp_path: Path,
    database_url: str,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
) -> None:
    """One turn in flight per user: the dead process's reservation is released by the
    sweep that resumes its turn, so neither the resumed turn nor the next is refused."""
    chat = 4300
    env = parley_env(database_url, llm, telegram, PARLEY_USER_TURNS_IN_FLIGHT="1")
    llm.set_default(text_reply(HALF))
    llm.hold()
    first = Parley(tmp_path / "first", env)
    try:
        telegram.push(private_message(chat, "question before the crash"))
        await wait_until(lambda: llm.held == 1, within=120)
        first.kill()
    finally:
        llm.release()
        first.stop()
    llm.set_default(text_reply(ANSWER))
    second = Parley(tmp_path / "second", env)
    try:
        await telegram.wait_for(lambda t: answers_in(t, chat, ANSWER) == 1, within=90)
        await wait_for_async(lambda: _none_open(database_url), within=30)
        telegram.push(private_message(chat, "the next question"))
        await telegram.wait_for(lambda t: answers_in(t, chat, ANSWER) == 2, within=90)
        assert not any("at most 1 at a time" in shown for shown in telegram.shown(chat))
    finally:
        _, err = second.stop()
    assert "Traceback" not in err, err[-3000:]
