"""Several replicas on one PostgreSQL database: one reply per event, turns of one
conversation in order, one scheduler leader with take-over."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from sqlmodel import select

from bot.app import Application
from bot.domain import ChatKind, ChatRef, IncomingMessage, ReminderRequest, UserRef
from bot.storage.models import Lease, Reminder
from integrations.slack import SlackPlatform
from integrations.telegram import TelegramPlatform
from tests.apps import AppFactory, RecordingMessenger, wait_until
from tests.databases import fresh_postgres_database
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.surface import RecordingSurface
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_message
from tests.integrations.slack.harness import SIGNING_SECRET, dm_event, event_body, sign

SECRET = "replica-webhook-secret"
HOOK = "https://parley.example.test/telegram/hook"

Replica = Callable[..., Awaitable[Application]]


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    async with fresh_postgres_database(postgres_url) as url:
        yield url


@pytest.fixture
async def replica(database: str, make_app: AppFactory) -> AsyncIterator[Replica]:
    """`await replica(**groups)`: the one app factory (tests/apps.py) on the shared
    PostgreSQL database, without tools; `serve=True` also runs `serve()` (web server on
    port 0, platforms). `database` comes first: set up before the apps, dropped after
    they are closed."""
    running: list[tuple[asyncio.Event, asyncio.Task[None] | None]] = []

    async def make(
        *, serve: bool = False, messengers: tuple[Any, ...] = (), **groups: Any
    ) -> Application:
        app = await make_app(
            [], messengers=messengers, database_url=database, **{"http": {"port": 0}, **groups}
        )
        stop = asyncio.Event()
        task = asyncio.create_task(app.serve(stop)) if serve else None
        running.append((stop, task))
        if task is not None:
            deadline = time.monotonic() + 10
            while len(app.started) < len(app.platforms) or app.web is None:
                assert not task.done(), task
                assert time.monotonic() < deadline, "the replica did not start"
                await asyncio.sleep(0.01)
        return app

    yield make
    for stop, task in running:
        stop.set()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)  # a failure was reported


async def test_two_replicas_answer_one_telegram_update_once(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, replica: Replica
) -> None:
    llm.set_default(text_reply("Only once.", delay=0.1))
    options = {
        "bot_token": TOKEN,
        "base_url": telegram.base_url,
        "webhook_url": HOOK,
        "webhook_secret": SECRET,
    }
    first = await replica(serve=True, telegram=options)
    second = await replica(serve=True, telegram=options)
    assert isinstance(first.platforms[0], TelegramPlatform)
    body = {"update_id": 7001, **private_message(4242, "hello both")}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"http://127.0.0.1:{app.web.port}/telegram/hook", json=body, headers=headers
                )
                for app in (first, second)
                if app.web is not None
            )
        )
    assert [a.status_code for a in answers] == [200, 200]
    await telegram.wait_for(lambda t: len(t.calls_of("sendRichMessage")) >= 1)
    await asyncio.sleep(0.5)
    sent = [
        c
        for c in telegram.calls_of("sendRichMessage")
        if c.params["rich_message"] == {"markdown": "Only once."}
    ]
    assert len(sent) == 1
    assert len(llm.requests) == 1


async def test_two_replicas_answer_one_slack_event_once(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, replica: Replica
) -> None:
    llm.set_default(text_reply("Slack, once.", delay=0.1))
    options = {
        "bot_token": "xoxb-test-token",
        "signing_secret": SIGNING_SECRET,
        "api_url": slack.api_url,
    }
    # A generous preview delay: the answer is one chat.postMessage, whatever the load.
    whole = {"preview_delay_seconds": 5}
    apps = [await replica(serve=True, slack=options, bot=whole) for _ in range(2)]
    assert isinstance(apps[0].platforms[0], SlackPlatform)
    body = json.dumps(event_body(dm_event("hello both"), f"Ev{uuid.uuid4().hex[:10].upper()}"))
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign(body, stamp),
    }
    async with aiohttp.ClientSession() as session:

        async def post(app: Application) -> int:
            assert app.web is not None
            url = f"http://127.0.0.1:{app.web.port}/slack/events"
            async with session.post(url, data=body.encode(), headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(post(app) for app in apps))
    assert statuses == [200, 200]
    [answer] = await slack.wait_for("chat.postMessage", 1, within=10)
    await asyncio.sleep(0.5)
    assert len(slack.bodies("chat.postMessage")) == 1 and answer["text"] == "Slack, once."
    assert len(llm.requests) == 1


async def test_turns_of_one_conversation_do_not_interleave_across_replicas(
    llm: ScriptedOpenAIServer, replica: Replica
) -> None:
    """Both replicas take a message of the same conversation at once: the second turn
    waits for the first (advisory lock), so its model request contains the first answer."""
    llm.set_default(text_reply("first answer", delay=0.5))
    first, second = await replica(), await replica()
    user = UserRef("test", "bob", "Bob")
    chat = ChatRef("test", "dm-bob", ChatKind.DM)

    async def turn(app: Application, text: str, delay: float) -> None:
        await asyncio.sleep(delay)
        surface = RecordingSurface()
        outcome = await app.engine.handle(IncomingMessage(chat=chat, user=user, text=text), surface)
        assert not outcome.error, outcome.error

    await asyncio.gather(turn(first, "one", 0), turn(second, "two", 0.15))

    assert len(llm.requests) == 2
    later = json.dumps(llm.requests[1]["messages"])
    assert "first answer" in later, "the second turn ran before the first was stored"


async def test_one_leader_runs_reminders_and_another_takes_over_when_it_dies(
    replica: Replica,
) -> None:
    # Renewed every 0.2 s, the lease outlives a 2.8 s stall of the event loop (both
    # replicas share it), which a busy machine can cause: at 1 s, the standby took over
    # from a living leader once in a few runs. It is also how long the take-over waits.
    ops = {"lease_seconds": 3.0, "lease_renew_seconds": 0.2}
    reminders = {"retry_seconds": 0.2, "late_after_seconds": 30}
    first_messenger, second_messenger = RecordingMessenger(), RecordingMessenger()
    first = await replica(messengers=(first_messenger,), ops=ops, reminders=reminders)
    second = await replica(messengers=(second_messenger,), ops=ops, reminders=reminders)
    await first.leadership.start()
    await second.leadership.start()
    assert first.scheduler.running and not second.scheduler.running
    assert (await second.readiness())[1]["scheduler"] == "standby"

    # Created on the standby replica: the leader picks it up at its next renewal.
    alice, dm = UserRef("test", "alice", "Alice"), ChatRef("test", "dm-alice", ChatKind.DM)

    def due(text: str, seconds: float) -> ReminderRequest:
        return ReminderRequest(
            user=alice,
            chat=dm,
            thread_key="",
            kind="message",
            text=text,
            due_at=datetime.now(UTC) + timedelta(seconds=seconds),
            timezone="UTC",
            recurrence="none",
            cron="",
        )

    await second.reminders.create(due("from the standby", 0.5))
    await wait_until(lambda: len(first_messenger.sent) == 1, within=5)

    # The leader dies without releasing its lease: the other takes over once it expires.
    # Due well after the death: `create` itself makes several database round trips, and
    # on a busy machine a reminder due 0.3 s after `due()` was computed could fire on the
    # still-living leader (delivered there, correctly), so the take-over had nothing to do.
    request = due("after the take-over", 3.0)
    await first.reminders.create(request)
    lease_ends = await lease_expiry(first)
    await first.leadership.stop(release=False)
    assert datetime.now(UTC) < request.due_at, "the leader died after the reminder was due"
    await wait_until(lambda: second.scheduler.running, within=15)
    # Not before the dead leader's lease ran out (seen after the take-over, so this
    # cannot fail when the lease holds, and catches a take-over that comes early).
    assert datetime.now(UTC) >= lease_ends
    await wait_until(lambda: len(second_messenger.sent) == 1, within=15)
    await asyncio.sleep(0.5)

    assert [t for t in first_messenger.texts] == ["⏰ Reminder: from the standby"]
    assert [t for t in second_messenger.texts] == ["⏰ Reminder: after the take-over"]


async def lease_expiry(app: Application) -> datetime:
    """When the scheduler lease, as stored now, runs out."""
    async with app.database.read() as session:
        lease = (await session.exec(select(Lease).where(Lease.name == "scheduler"))).one()
    return lease.expires_at


async def test_the_leader_picks_up_a_reminder_committed_after_a_newer_one(
    replica: Replica,
) -> None:
    """PostgreSQL hands out ids before commit: a reminder with a lower id can become
    visible after one with a higher id, and must still fire (once)."""
    # No leader dies here: a long lease costs nothing and survives a stalled event loop.
    ops = {"lease_seconds": 10.0, "lease_renew_seconds": 0.1}
    messenger = RecordingMessenger()
    leader = await replica(messengers=(messenger,), ops=ops)
    standby = await replica(ops=ops)
    await leader.leadership.start()
    await standby.leadership.start()
    alice, dm = UserRef("test", "alice", "Alice"), ChatRef("test", "dm-alice", ChatKind.DM)
    user_id, channel_id = await standby.store.ids_of(alice, dm)
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    async with standby.database.write() as session:
        slow = Reminder(
            user_id=user_id,
            channel_id=channel_id,
            kind="message",
            timezone="UTC",
            text="the slow commit",
            due_at=soon,
        )
        session.add(slow)
        await session.flush()  # its id is taken now, the row is not visible yet
        await standby.reminders.create(
            ReminderRequest(
                user=alice,
                chat=dm,
                thread_key="",
                kind="message",
                text="the quick commit",
                due_at=soon,
                timezone="UTC",
                recurrence="none",
                cron="",
            )
        )
        await wait_until(lambda: len(messenger.sent) == 1, within=5)
    await wait_until(lambda: len(messenger.sent) == 2, within=5)
    await asyncio.sleep(0.5)
    assert messenger.texts == ["⏰ Reminder: the quick commit", "⏰ Reminder: the slow commit"]
