"""Operations: graceful shutdown of a real `parley run`, /readyz, /metrics, turn ids in logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import delete, update

from bot.app import Application
from bot.domain import (
    ChatKind,
    ChatRef,
    IncomingMessage,
    ReminderRequest,
    ToolContext,
    UserRef,
)
from bot.ops.logs import JSONFormatter
from bot.ops.observe import TurnIdFilter
from bot.storage.models import Lease
from bot.toolkit import tool
from tests.apps import AppFactory, RecordingMessenger, wait_until
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_message
from tests.processes import Run, ready_run

SECRET = "shutdown-webhook-secret"
HOOK = "https://parley.example.test/telegram/hook"
BOB = UserRef("test", "bob", "Bob")
DM = ChatRef("test", "dm-bob", ChatKind.DM)


def wait_for_the_model(run: Run, llm: ScriptedOpenAIServer) -> None:
    """Return once a turn is inside the held model's answer."""
    deadline = time.monotonic() + 30
    while not llm.held:
        assert time.monotonic() < deadline, run.output()[1]
        time.sleep(0.02)


def draining(run: Run, client: httpx.Client, base: str) -> httpx.Response:
    """/readyz once it says 503: the process took its SIGTERM and stopped taking work
    (polled, not slept for: a busy machine may take a while to deliver the signal)."""
    deadline = time.monotonic() + 30
    while (ready := client.get(f"{base}/readyz")).status_code == 200:
        assert time.monotonic() < deadline, run.output()[1]
        time.sleep(0.02)
    return ready


def test_sigterm_during_a_turn_finishes_it_stores_it_and_exits_0(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer
) -> None:
    llm.set_default(text_reply("The slow answer arrived."))
    llm.hold()  # the model answers once released: the turn is running for sure till then
    run, base = ready_run(
        tmp_path,
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
        PARLEY_TELEGRAM_WEBHOOK_URL=HOOK,
        PARLEY_TELEGRAM_WEBHOOK_SECRET=SECRET,
        PARLEY_SHUTDOWN_GRACE_SECONDS="20",
        PARLEY_LOG_FORMAT="json",
    )
    try:
        url = f"{base}/telegram/hook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        with httpx.Client(timeout=5) as client:
            first = client.post(
                url, json={"update_id": 501, **private_message(77, "hi")}, headers=headers
            )
            wait_for_the_model(run, llm)
            run.process.send_signal(signal.SIGTERM)
            ready = draining(run, client, base)
            late = client.post(
                url, json={"update_id": 502, **private_message(77, "again")}, headers=headers
            )
        llm.release()
        _, log = run.finish(within=20)
    finally:
        llm.release()
        run.stop()
    process = run.process

    assert first.status_code == 200
    assert late.status_code == 503  # no new work: Telegram delivers it again later
    assert ready.status_code == 503 and ready.json()["stopping"] is True
    assert process.returncode == 0, log
    assert "Traceback" not in log
    texts = telegram.sent_texts()
    assert "The slow answer arrived." in texts, log
    assert len(llm.requests) == 1  # the refused update never reached the model
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    turn_lines = [r for r in records if r["logger"] == "bot.turn.engine"]
    assert turn_lines and all(r.get("turn_id") for r in turn_lines), log
    assert "hi" not in [r["message"] for r in records]
    with sqlite3.connect(tmp_path / "data" / "parley.db") as db:
        stored = [row[0] for row in db.execute("SELECT content FROM messages ORDER BY id")]
    assert stored == ["hi", "The slow answer arrived."]


class LookupParams(BaseModel):
    word: str


@tool()
async def lookup(params: LookupParams, ctx: ToolContext) -> str:
    """Look a word up."""
    return f"{params.word}: found"


@pytest.fixture
async def served(make_app: AppFactory) -> AsyncIterator[Application]:
    app = await make_app(tools=[lookup], http={"port": 0})
    stop = asyncio.Event()
    task = asyncio.create_task(app.serve(stop))
    while not app.leadership.running:
        assert not task.done()
        await asyncio.sleep(0.01)
    yield app
    stop.set()
    await task


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value in a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if got == wanted:
                return float(match.group(3))
    return 0.0


async def test_metrics_move_after_a_turn_and_readyz_reports_each_part(
    llm: ScriptedOpenAIServer, served: Application
) -> None:
    assert served.web is not None
    base = f"http://127.0.0.1:{served.web.port}"
    llm.script(
        tool_call_reply(("lookup", {"word": "tea"}), usage=(30, 7)),
        text_reply("Tea is found.", usage=(40, 9)),
    )
    async with httpx.AsyncClient() as client:
        before = (await client.get(f"{base}/metrics")).text
        outcome = await served.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text="tea?"), RecordingSurface()
        )
        after = await client.get(f"{base}/metrics")
        ready = await client.get(f"{base}/readyz")
    assert not outcome.error
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert sample(before, "parley_turns_total", platform="test", outcome="ok") == 0
    assert sample(text, "parley_turns_total", platform="test", outcome="ok") == 1
    assert sample(text, "parley_turn_seconds_count", platform="test") == 1
    assert sample(text, "parley_llm_calls_total", model="scripted", outcome="ok") == 2
    assert sample(text, "parley_llm_tokens_total", model="scripted", kind="prompt") == 70
    assert sample(text, "parley_llm_tokens_total", model="scripted", kind="completion") == 16
    assert sample(text, "parley_tool_calls_total", tool="lookup", outcome="ok") == 1
    assert sample(text, "parley_turns_in_flight") == 0
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "platforms": {},
        "scheduler": "leader",
    }


async def test_a_failing_tool_and_a_made_up_one_are_counted_as_failures(
    llm: ScriptedOpenAIServer, served: Application
) -> None:
    llm.script(
        tool_call_reply(("lookup", {"word": 5}), ("teleport", {})),
        text_reply("Could not."),
    )
    await served.engine.handle(IncomingMessage(chat=DM, user=BOB, text="x"), RecordingSurface())
    text = served.metrics.exposition().decode()
    assert sample(text, "parley_tool_calls_total", tool="lookup", outcome="error") == 1
    assert sample(text, "parley_tool_calls_total", tool="(unknown)", outcome="error") == 1
    assert "teleport" not in text


async def test_every_log_line_of_a_turn_carries_its_turn_id_and_no_message_body(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(tools=[lookup])
    llm.script(tool_call_reply(("lookup", {"word": "x"})), text_reply("done"))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TurnIdFilter())
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        await app.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text="my secret diary entry"), RecordingSurface()
        )
        await app.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text="again"), RecordingSurface()
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    turn_lines = [line for line in lines if line["logger"] == "bot.turn.engine"]
    assert len(turn_lines) >= 4
    assert all(line.get("turn_id") for line in turn_lines)
    assert len({line["turn_id"] for line in turn_lines}) == 2  # one id per turn
    assert "diary" not in stream.getvalue()


async def test_a_turn_longer_than_the_grace_period_is_cancelled_and_serve_returns(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    app = await make_app(tools=[lookup], http={"port": 0}, ops={"shutdown_grace_seconds": 0.3})
    llm.set_default(text_reply("too slow"))
    llm.hold()  # released only at the end: the turn cannot finish while serve stops
    stop = asyncio.Event()
    serving = asyncio.create_task(app.serve(stop))
    await wait_until(lambda: app.leadership.running)
    turn = asyncio.create_task(
        app.engine.handle(IncomingMessage(chat=DM, user=BOB, text="hi"), RecordingSurface())
    )
    try:
        await wait_until(lambda: llm.held == 1, within=30)
        stop.set()
        await asyncio.wait_for(serving, timeout=30)  # a deadline, not a measure
    finally:
        llm.release()
    assert turn.cancelled()
    assert app.engine.turns_in_flight == 0


async def test_while_draining_only_the_operations_endpoints_answer(served: Application) -> None:
    assert served.web is not None
    base = f"http://127.0.0.1:{served.web.port}"
    served.draining = True
    async with httpx.AsyncClient() as client:
        webhook = await client.post(f"{base}/slack/events", content=b"{}")
        health = await client.get(f"{base}/healthz")
        metrics = await client.get(f"{base}/metrics")
        ready = await client.get(f"{base}/readyz")
    served.draining = False
    assert (webhook.status_code, webhook.headers["retry-after"]) == (503, "5")
    assert (health.status_code, metrics.status_code, ready.status_code) == (200, 200, 503)


async def test_reminders_are_counted_when_they_fire_and_the_scheduler_restarts(
    make_app: AppFactory,
) -> None:
    messenger = RecordingMessenger()
    app = await make_app(messengers=(messenger,), reminders={"late_after_seconds": 60})

    def due(text: str) -> ReminderRequest:
        return ReminderRequest(
            user=BOB,
            chat=DM,
            thread_key="",
            kind="message",
            text=text,
            due_at=datetime.now(UTC) + timedelta(seconds=0.1),
            timezone="UTC",
            recurrence="none",
            cron="",
        )

    await app.start_scheduler()
    await app.reminders.create(due("one"))
    await wait_until(lambda: len(messenger.sent) == 1)
    # A leader that lost its lease and took it again restarts the same scheduler.
    await app.scheduler.stop()
    await app.scheduler.start()
    await app.reminders.create(due("two"))
    await wait_until(lambda: len(messenger.sent) == 2)
    text = app.metrics.exposition().decode()
    assert sample(text, "parley_reminders_fired_total", timeliness="on_time", outcome="ok") == 2


def test_sigterm_with_a_turn_past_the_grace_period_still_exits_0_promptly(
    tmp_path: Path, llm: ScriptedOpenAIServer, telegram: FakeTelegramServer
) -> None:
    llm.set_default(text_reply("never in time"))
    llm.hold()  # never released before the end: the turn cannot finish in any time
    run, base = ready_run(
        tmp_path,
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        TELEGRAM_BOT_TOKEN=TOKEN,
        PARLEY_TELEGRAM_BASE_URL=telegram.base_url,
        PARLEY_TELEGRAM_WEBHOOK_URL=HOOK,
        PARLEY_TELEGRAM_WEBHOOK_SECRET=SECRET,
        PARLEY_SHUTDOWN_GRACE_SECONDS="0.5",
    )
    try:
        with httpx.Client(timeout=5) as client:
            client.post(
                f"{base}/telegram/hook",
                json={"update_id": 601, **private_message(78, "hi")},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
        wait_for_the_model(run, llm)
        run.process.send_signal(signal.SIGTERM)
        # Exiting at all proves the grace period ended the turn; the bound is only a
        # deadline, generous for a busy machine.
        _, log = run.finish(within=10)
    finally:
        llm.release()
        run.stop()
    process = run.process
    assert process.returncode == 0, log
    assert "1 turn(s) still running after 0.5 s: cancelled" in log
    assert "Traceback" not in log


async def test_message_bodies_are_logged_only_when_enabled(
    llm: ScriptedOpenAIServer, make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    llm.set_default(text_reply("ok"))
    quiet = await make_app(tools=[])
    with caplog.at_level(logging.INFO, logger="bot.turn.engine"):
        await quiet.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text="quiet words"), RecordingSurface()
        )
    assert (
        "quiet words" not in caplog.text
        and "turn from test:bob (11 chars, 0 file(s))" in caplog.text
    )
    caplog.clear()
    loud = await make_app(tools=[], ops={"log_bodies": True})
    with caplog.at_level(logging.INFO, logger="bot.turn.engine"):
        await loud.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text="loud words"), RecordingSurface()
        )
    assert "turn from test:bob: loud words" in caplog.text


async def test_a_logged_body_cannot_forge_log_lines(
    llm: ScriptedOpenAIServer, make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    llm.set_default(text_reply("ok"))
    loud = await make_app(tools=[], ops={"log_bodies": True})
    forged = "hi\n2026-12-07 12:00:00 ERROR bot.policy.admin: admin password reset\r\x1b[2K\u202eok"
    with caplog.at_level(logging.INFO, logger="bot.turn.engine"):
        await loud.engine.handle(
            IncomingMessage(chat=DM, user=BOB, text=forged), RecordingSurface()
        )
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("turn from")]
    assert line == (
        "turn from test:bob: hi\\n2026-12-07 12:00:00 ERROR bot.policy.admin: admin password reset"
        "\\r\\x1b[2K\\u202eok"
    )


async def test_a_leader_that_loses_its_lease_stops_its_scheduler_and_can_lead_again(
    make_app: AppFactory,
) -> None:
    app = await make_app(ops={"lease_seconds": 5.0, "lease_renew_seconds": 0.05})
    await app.leadership.start()
    assert app.scheduler.running
    async with app.database.write() as session:  # another replica took it over
        await session.exec(
            update(Lease).values(
                holder="someone-else", expires_at=datetime.now(UTC) + timedelta(60)
            )
        )
    await wait_until(lambda: not app.scheduler.running)
    assert (await app.readiness())[1]["scheduler"] == "standby"
    async with app.database.write() as session:  # ... and released it
        await session.exec(delete(Lease))
    await wait_until(lambda: app.scheduler.running)
    assert app.leadership.leader
