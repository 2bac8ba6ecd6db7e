"""A console with a fortnight of history: turns per day (some failed), tool calls, a
failing model call, usage in a named channel, a reminder due and one that failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.domain import ChatKind, ChatRef, IncomingMessage, ReminderRequest, UserRef
from bot.storage.models import Reminder
from tests.fakes.openai_server import ScriptedOpenAIServer, error_reply, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import ConsoleHarness

ALICE = UserRef("test", "alice", "Alice Example")
FINANCE = ChatRef("test", "room-1", ChatKind.GROUP, "Finance")
# (days ago, answered, failed) written straight into turn_log: the history before today.
HISTORY = [(13, 4, 0), (9, 12, 1), (6, 7, 0), (3, 25, 3), (1, 9, 0)]


@dataclass
class Story:
    failed_turn_id: str
    today: str
    first_day: str


async def tell(console: ConsoleHarness, llm: ScriptedOpenAIServer) -> Story:
    app = console.app
    now = datetime.now(UTC)
    history = [
        {
            "turn_id": f"old{days:02d}{i:03d}",
            "finished_at": now - timedelta(days=days),
            "platform": "telegram",
            "outcome": "ok" if i < answered else "error",
            "seconds": 0.5 + i / 10,
            "vendor": "generic",
            "models": {"scripted": [1, 0 if i < answered else 1]},
            "tools": {},
            "error": "" if i < answered else "the model failed (scripted)",
        }
        for days, answered, failed in HISTORY
        for i in range(answered + failed)
    ]
    await app.activity_store.record(history, keep_days=90)

    # Today, for real through the engine: a tool call, a plain answer, a failing model.
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "Asia/Shanghai"}), usage=(30, 5)),
        text_reply("It is morning in Shanghai.", usage=(40, 8)),
        text_reply("Noted.", usage=(20, 3)),
        error_reply(500, message="upstream is down"),
    )
    for text in ("time in Shanghai?", "note this", "and now?"):
        await app.engine.handle(
            IncomingMessage(chat=FINANCE, user=ALICE, text=text), RecordingSurface()
        )

    due = await app.reminders.create(
        ReminderRequest(
            user=ALICE,
            chat=FINANCE,
            thread_key="",
            kind="message",
            text="pay the invoices",
            due_at=now + timedelta(hours=3),
            timezone="UTC",
        )
    )
    failed = await app.reminders.create(
        ReminderRequest(
            user=ALICE,
            chat=FINANCE,
            thread_key="",
            kind="message",
            text="call the bank",
            due_at=now + timedelta(hours=5),
            timezone="UTC",
        )
    )
    assert due.id != failed.id
    async with app.database.write() as session:
        await session.exec(  # type: ignore[call-overload]
            update(Reminder).where(Reminder.id == failed.id).values(status="failed")  # type: ignore[arg-type]
        )
    await app.activity.flush()
    failures = await app.activity_store.newest_failures(limit=1)
    return Story(
        failed_turn_id=failures[0].turn_id,
        today=now.date().isoformat(),
        first_day=(now - timedelta(days=13)).date().isoformat(),
    )
