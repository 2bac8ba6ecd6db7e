"""A database outage in the middle of a burst, with real `parley run` processes on
PostgreSQL behind a proxy that cuts every connection for five seconds (tests/db_proxy.py).

The senders behave as the platforms do: Telegram delivers a webhook update again until
it gets a 2xx; Slack retries an event up to three times (`X-Slack-Retry-Num`) on a
non-2xx (here within seconds, not minutes). Ten turns are mid-answer when the database
goes (the scripted model holds them); ten more messages arrive during the cut. Every
person gets exactly one answer, nobody gets "something went wrong" after theirs, and
every turn is settled once the database is back, so a restart resumes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.storage import Database
from bot.storage.turns import StoredTurn, TurnStore
from bot.turn.engine import UNEXPECTED_ERROR
from tests.databases import fresh_postgres_database
from tests.db_proxy import DatabaseProxy
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_message
from tests.processes import SIGNING_SECRET, Run, ready_run

ANSWER = "The answer, all of it."
SECRET = "outage-webhook-secret"
HOOK = "https://parley.example.test/telegram/hook"
CUT_SECONDS = 5.0
BEFORE, DURING = 10, 10  # turns in flight when the database goes; messages sent during the cut
TELEGRAM_USERS = [5100 + n for n in range(BEFORE + DURING)]
SLACK_USERS = [f"U{7100 + n}" for n in range(BEFORE + DURING)]


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (skipped without PARLEY_TEST_POSTGRES)."""
    manager = fresh_postgres_database(postgres_url)
    loop = asyncio.new_event_loop()
    try:
        url = loop.run_until_complete(manager.__aenter__())
        yield url.replace("postgresql+asyncpg://", "postgresql://")
        loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()


@pytest.fixture
def proxy(postgres_database: str) -> Iterator[DatabaseProxy]:
    with DatabaseProxy.before(postgres_database) as running:
        yield running


def open_turns(database_url: str) -> list[StoredTurn]:
    async def read() -> list[StoredTurn]:
        database = Database(database_url)
        try:
            return await TurnStore(database).open_turns()
        finally:
            await database.aclose()

    return asyncio.run(read())


def wait(condition: Callable[[], bool], what: str, runs: list[Run], within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n---\n".join(run.output()[1][-4000:] for run in runs)
            raise AssertionError(f"{what} did not happen within {within} s:\n{logs}")
        time.sleep(0.05)


def common_env(database_url: str, llm: ScriptedOpenAIServer) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": llm.base_url,
        "PARLEY_MODEL": "scripted",
        "PARLEY_LLM_MAX_RETRIES": "0",
        "PARLEY_PREVIEW_DELAY": "0",
        "PARLEY_LOG_LEVEL": "INFO",
    }


def metric(url: str, name: str) -> float:
    """One sample of the process's /metrics, by its full name with labels."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not in /metrics")


def telegram_delivery(url: str, update: dict[str, Any], deadline: float) -> int:
    """Deliver `update` as Telegram does: again (after a pause) until a 2xx; how many
    deliveries it took."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    attempts = 0
    with httpx.Client(timeout=10) as client:
        while True:
            attempts += 1
            try:
                status = client.post(url, json=update, headers=headers).status_code
            except httpx.TransportError:
                status = 0
            if 200 <= status < 300:
                return attempts
            assert time.monotonic() < deadline, f"update {update['update_id']} never taken"
            time.sleep(0.5)


def slack_delivery(url: str, body: dict[str, Any]) -> int:
    """Deliver an event as Slack does: retried up to three times on a non-2xx, with
    `X-Slack-Retry-Num` (after 1, 2 and 4 s here); the status of the last delivery."""
    text = json.dumps(body)
    verifier = SignatureVerifier(SIGNING_SECRET)
    status = 0
    with httpx.Client(timeout=10) as client:
        for retry in range(4):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": verifier.generate_signature(timestamp=timestamp, body=text),
            }
            if retry:
                headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
                time.sleep(2 ** (retry - 1))
            try:
                status = client.post(url, content=text, headers=headers).status_code
            except httpx.TransportError:
                status = 0
            if 200 <= status < 300:
                return status
    return status


def burst(
    send: Callable[[int], Any],
    proxy: DatabaseProxy,
    held: Callable[[], bool],
    release: Callable[[], None],
    runs: list[Run],
) -> list[Any]:
    """BEFORE sends (their turns held at the model), then the cut, DURING sends in it, and
    the held answers released into the cut; the senders' results."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = [pool.submit(send, n) for n in range(BEFORE)]
        wait(held, "the first turns reaching the model", runs)
        proxy.cut(CUT_SECONDS)
        second: list[Future[Any]] = []
        for n in range(BEFORE, BEFORE + DURING):
            second.append(pool.submit(send, n))
            time.sleep(CUT_SECONDS / (DURING + 2))  # spread over the cut
            if n == BEFORE + 1:
                release()  # the held answers finish while the database is away
        return [future.result() for future in first + second]


@pytest.mark.timeout(420)
def test_a_database_cut_during_a_telegram_webhook_burst_loses_and_doubles_nothing(
    tmp_path: Path,
    postgres_database: str,
    proxy: DatabaseProxy,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
) -> None:
    llm.set_default(text_reply(ANSWER))
    llm.hold()
    env = {
        **common_env(proxy.url_through(postgres_database), llm),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "PARLEY_TELEGRAM_BASE_URL": telegram.base_url,
        "PARLEY_TELEGRAM_WEBHOOK_URL": HOOK,
        "PARLEY_TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    runs: list[Run] = []
    try:
        (tmp_path / "first").mkdir()
        first, url = ready_run(tmp_path / "first", **env)
        runs.append(first)
        deadline = time.monotonic() + 120

        def send(n: int) -> int:
            update = {"update_id": 3000 + n, **private_message(TELEGRAM_USERS[n], f"q{n}")}
            return telegram_delivery(f"{url}/telegram/hook", update, deadline)

        deliveries = burst(send, proxy, lambda: llm.held == BEFORE, llm.release, runs)
        assert any(count > 1 for count in deliveries), "no update was refused during the cut"

        def everyone_answered() -> bool:
            return all(telegram.shown(user) for user in TELEGRAM_USERS)

        wait(everyone_answered, "an answer in every chat", runs)
        wait(lambda: not open_turns(postgres_database), "every turn settled", runs)
        for user in TELEGRAM_USERS:
            assert telegram.shown(user) == [ANSWER], (user, telegram.shown(user))
        assert metric(url, 'parley_claims_failed_total{platform="telegram"}') >= 1
        assert metric(url, "parley_turns_unsettled") == 0
        asked = len(llm.requests)
        assert asked == BEFORE + DURING
        first.stop()
        # A restart (the leader's sweep at start) finds nothing left to resume.
        (tmp_path / "second").mkdir()
        second, _ = ready_run(tmp_path / "second", **{**env, "DATABASE_URL": postgres_database})
        runs.append(second)
        assert not open_turns(postgres_database)
        assert len(llm.requests) == asked
        for user in TELEGRAM_USERS:
            assert telegram.shown(user) == [ANSWER]
    finally:
        llm.release()
        outputs = [run.stop() for run in runs]
    err = outputs[0][1]
    assert "answer was shown but could not be stored" in err
    assert "settled as done at last" in err
    assert UNEXPECTED_ERROR not in "".join(telegram.sent_texts())


@pytest.mark.timeout(420)
def test_a_turn_that_failed_in_the_cut_is_not_answered_after_a_restart(
    tmp_path: Path,
    postgres_database: str,
    proxy: DatabaseProxy,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
) -> None:
    users = TELEGRAM_USERS[:3]
    # Each turn calls a tool; its round cannot be stored in the cut, so the turn fails
    # and its user is told. Were it resumed later, the model would answer ANSWER.
    llm.script(*(tool_call_reply(("get_current_time", {"timezone": "UTC"})) for _ in users))
    llm.set_default(text_reply(ANSWER))
    llm.hold()
    env = {
        **common_env(proxy.url_through(postgres_database), llm),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "PARLEY_TELEGRAM_BASE_URL": telegram.base_url,
        "PARLEY_TELEGRAM_WEBHOOK_URL": HOOK,
        "PARLEY_TELEGRAM_WEBHOOK_SECRET": SECRET,
    }
    runs: list[Run] = []
    try:
        (tmp_path / "first").mkdir()
        first, url = ready_run(tmp_path / "first", **env)
        runs.append(first)
        deadline = time.monotonic() + 60
        for n, user in enumerate(users):
            update = {"update_id": 4000 + n, **private_message(user, "what time is it?")}
            assert telegram_delivery(f"{url}/telegram/hook", update, deadline) == 1
        wait(lambda: llm.held == len(users), "the turns reaching the model", runs)
        proxy.cut(CUT_SECONDS)
        llm.release()

        def told(user: int) -> bool:
            return any("went wrong" in text for text in telegram.shown(user))

        wait(lambda: all(told(user) for user in users), "every user told of the failure", runs)
        wait(lambda: not open_turns(postgres_database), "every failed turn settled", runs)
        asked = len(llm.requests)
        first.stop()
        (tmp_path / "second").mkdir()
        second, _ = ready_run(tmp_path / "second", **{**env, "DATABASE_URL": postgres_database})
        runs.append(second)
        assert not open_turns(postgres_database)
        assert len(llm.requests) == asked == len(users)
        for user in users:
            shown = telegram.shown(user)
            assert sum("went wrong" in text for text in shown) == 1, shown
            assert ANSWER not in shown, shown
    finally:
        llm.release()
        for run in runs:
            run.stop()


def slack_seen(slack: FakeSlackServer, channel: str) -> str:
    """All a DM channel was shown: streamed text and posted messages."""
    posted = [
        str(body.get("text", ""))
        for method in ("chat.postMessage", "chat.update")
        for body in slack.bodies(method)
        if body.get("channel") == channel and "_failed" not in body
    ]
    streamed = [
        str(body.get("markdown_text", ""))
        for method in ("chat.startStream", "chat.appendStream", "chat.stopStream")
        for body in slack.bodies(method)
        if body.get("channel") == channel and "_failed" not in body
    ]
    return "".join(streamed) + "\n".join(posted)


@pytest.mark.timeout(420)
def test_a_database_cut_during_a_slack_http_burst_loses_and_doubles_nothing(
    tmp_path: Path,
    postgres_database: str,
    proxy: DatabaseProxy,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
) -> None:
    llm.set_default(text_reply(ANSWER))
    llm.hold()
    env = {
        **common_env(proxy.url_through(postgres_database), llm),
        "SLACK_BOT_TOKEN": "xoxb-outage",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PARLEY_SLACK_API_URL": slack.api_url,
    }
    runs: list[Run] = []
    try:
        (tmp_path / "first").mkdir()
        first, url = ready_run(tmp_path / "first", **env)
        runs.append(first)

        def send(n: int) -> int:
            event = {
                "type": "message",
                "channel": f"D{n:04d}",
                "channel_type": "im",
                "user": SLACK_USERS[n],
                "text": f"q{n}",
                "ts": f"{time.time():.6f}",
            }
            body = {
                "token": "legacy",
                "team_id": "T0001",
                "api_app_id": "A0001",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
            }
            return slack_delivery(f"{url}/slack/events", body)

        statuses = burst(send, proxy, lambda: llm.held == BEFORE, llm.release, runs)
        assert statuses == [200] * (BEFORE + DURING), statuses
        channels = [f"D{n:04d}" for n in range(BEFORE + DURING)]
        wait(
            lambda: all(ANSWER in slack_seen(slack, channel) for channel in channels),
            "an answer in every DM",
            runs,
        )
        wait(lambda: not open_turns(postgres_database), "every turn settled", runs)
        for channel in channels:
            seen = slack_seen(slack, channel)
            assert seen.count(ANSWER) == 1 and "went wrong" not in seen, (channel, seen)
        assert len(llm.requests) == BEFORE + DURING
        assert metric(url, 'parley_claims_failed_total{platform="slack"}') >= 1
        assert metric(url, "parley_turns_unsettled") == 0
    finally:
        llm.release()
        outputs = [run.stop() for run in runs]
    err = outputs[0][1]
    assert "answered 503, Slack sends it again" in err
    assert "settled as done at last" in err
