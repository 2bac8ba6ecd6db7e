"""The reminder tools: the model's structured time in the user's timezone, list, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.app import Application
from bot.domain import ChatKind, ChatRef, IncomingMessage, ReminderRequest, UserRef
from tests.apps import AppFactory, RecordingMessenger, wait_until
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tests.tools.helpers import call, context
from tools.reminders import cancel_reminder, create_reminder, list_reminders, set_timezone

ALICE = UserRef("test", "alice", "Alice")
BOB = UserRef("test", "bob", "Bob")
DM = ChatRef("test", "dm-alice", ChatKind.DM)
# Monday 2026-11-23 10:00 in Shanghai.
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def app_with_scheduler(make_app: AppFactory) -> Application:
    return await make_app(messengers=(RecordingMessenger(),))


async def create(app: Application, timezone: str = "Asia/Shanghai", **arguments: object) -> dict:
    ctx = context(app.engine.services, timezone=timezone, now=NOW)
    result = await call(create_reminder, dict(arguments), ctx)
    assert not result.is_error, result.content
    return json.loads(result.content)["created"]


async def test_a_local_time_is_read_in_the_users_timezone(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)

    created = await create(app, text="stand-up", at="2026-11-24T09:00")

    assert created["next"] == "Tue 2026-11-24 09:00 Asia/Shanghai"
    [info] = await app.reminders.list_for(ALICE)
    assert info.due_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


async def test_a_relative_delay(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)

    await create(app, text="tea", in_seconds=1200)

    [info] = await app.reminders.list_for(ALICE)
    assert info.due_at == datetime(2026, 11, 23, 2, 20, tzinfo=UTC)


async def test_every_weekday_at_8_30(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)

    created = await create(app, text="standup", at="2026-11-24T08:30", repeat="weekdays")

    assert created["repeat"] == "weekdays" and created["next"].startswith("Tue 2026-11-24 08:30")
    [info] = await app.reminders.list_for(ALICE)
    assert info.cron == "30 8 * * mon-fri"


async def test_weekly_follows_the_weekday_of_the_first_time(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)
    await create(app, text="review", at="2026-11-27T16:00", repeat="weekly", kind="follow_up")
    [info] = await app.reminders.list_for(ALICE)
    assert (info.cron, info.kind) == ("0 16 * * fri", "follow_up")


async def test_bad_times_are_explained_to_the_model(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)
    ctx = context(app.engine.services, timezone="Asia/Shanghai", now=NOW)

    past = await call(create_reminder, {"text": "x", "at": "2026-11-22T09:00"}, ctx)
    garbled = await call(create_reminder, {"text": "x", "at": "tomorrow at 9"}, ctx)
    nothing = await call(create_reminder, {"text": "x"}, ctx)
    bad_cron = await call(create_reminder, {"text": "x", "in_seconds": 5, "repeat": "cron"}, ctx)

    assert past.is_error and "in the past" in past.content and "2026-11-23 10:00" in past.content
    assert garbled.is_error and "ISO date-time" in garbled.content
    assert nothing.is_error and "Say when" in nothing.content
    assert bad_cron.is_error and "5-field crontab" in bad_cron.content
    assert await app.reminders.list_for(ALICE) == []


async def test_list_and_cancel_only_touch_the_users_own(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)
    mine = await create(app, text="mine", in_seconds=600)
    bob_ctx = context(app.engine.services, user=BOB, now=NOW)

    bob_list = await call(list_reminders, {}, bob_ctx)
    bob_cancel = await call(cancel_reminder, {"id": mine["id"]}, bob_ctx)
    ctx = context(app.engine.services, now=NOW)
    listed = await call(list_reminders, {}, ctx)
    cancelled = await call(cancel_reminder, {"id": mine["id"]}, ctx)
    after = await call(list_reminders, {"include_done": True}, ctx)

    assert json.loads(bob_list.content) == {"reminders": []}
    assert bob_cancel.is_error and "no pending reminder" in bob_cancel.content
    assert [r["text"] for r in json.loads(listed.content)["reminders"]] == ["mine"]
    assert not cancelled.is_error
    assert [r["status"] for r in json.loads(after.content)["reminders"]] == ["cancelled"]


async def test_set_timezone_is_stored_and_used_by_the_next_turn(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await app_with_scheduler(make_app)
    bad = await call(set_timezone, {"timezone": "Mars/Base"}, context(app.engine.services))
    llm.script(tool_call_reply(("set_timezone", {"timezone": "Asia/Tokyo"})), text_reply("ok"))
    message = IncomingMessage(chat=DM, user=ALICE, text="I live in Tokyo")

    await app.engine.handle(message, RecordingSurface())
    llm.script(text_reply("noted"))
    await app.engine.handle(message, RecordingSurface())

    assert bad.is_error and "unknown timezone" in bad.content
    assert "timezone is Asia/Tokyo" in llm.requests[-1]["messages"][0]["content"]


async def test_a_reminder_made_in_a_turn_is_delivered_to_that_chat_and_thread(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    messenger = RecordingMessenger()
    app = await make_app(messengers=(messenger,))
    await app.start_scheduler()
    llm.script(
        tool_call_reply(("create_reminder", {"text": "check the oven", "in_seconds": 1})),
        text_reply("I'll remind you in a second."),
    )
    message = IncomingMessage(chat=DM, user=ALICE, text="remind me", thread_key="th-9")

    outcome = await app.engine.handle(message, RecordingSurface())
    await wait_until(lambda: len(messenger.sent) == 1)

    assert not outcome.tool_results[0].is_error
    [(chat, text, thread, _)] = messenger.sent
    assert (chat, text, thread) == (DM, "⏰ Reminder: check the oven", "th-9")


async def test_a_repeating_reminder_never_starts_in_the_past(make_app: AppFactory) -> None:
    app = await app_with_scheduler(make_app)
    ctx = context(app.engine.services, timezone="Asia/Shanghai", now=NOW + timedelta(seconds=30))

    result = await call(create_reminder, {"text": "x", "in_seconds": 60, "repeat": "daily"}, ctx)

    assert not result.is_error
    [info] = await app.reminders.list_for(ALICE)
    assert info.due_at == datetime(2026, 11, 23, 2, 1, tzinfo=UTC)  # 10:01:30 -> 10:01
    assert info.cron == "1 10 * * *"
    late = await call(
        create_reminder, {"text": "y", "at": "2026-11-23T09:00", "repeat": "daily"}, ctx
    )
    assert json.loads(late.content)["created"]["next"] == "Tue 2026-11-24 09:00 Asia/Shanghai"


def names_offered(request: dict) -> set[str]:
    return {t["function"]["name"] for t in request.get("tools") or []}


async def test_a_user_cannot_have_more_pending_reminders_than_the_cap(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await make_app(messengers=(RecordingMessenger(),), reminders={"max_pending_per_user": 2})
    llm.script(
        tool_call_reply(
            *(("create_reminder", {"text": f"r{n}", "in_seconds": 600 + n}) for n in range(3))
        ),
        text_reply("Two are set; the third was refused."),
    )
    outcome = await app.engine.handle(
        IncomingMessage(DM, ALICE, "three reminders"), RecordingSurface()
    )

    first, second, third = outcome.tool_results
    assert not first.is_error and not second.is_error
    assert third.is_error and "already has 2 pending reminders" in third.content
    assert "list_reminders shows them" in third.content
    assert [i.text for i in await app.reminders.list_for(ALICE)] == ["r0", "r1"]
    # Only pending ones count: once one is cancelled, there is room again.
    assert await app.reminders.cancel(ALICE, json.loads(first.content)["created"]["id"])
    llm.script(
        tool_call_reply(("create_reminder", {"text": "r3", "in_seconds": 60})), text_reply("ok")
    )
    again = await app.engine.handle(IncomingMessage(DM, ALICE, "one more"), RecordingSurface())
    assert not again.tool_results[0].is_error


async def test_a_repeating_follow_up_may_not_run_more_often_than_the_minimum(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await make_app(messengers=(RecordingMessenger(),))  # the default: at most hourly
    every_minute = {"text": "check", "kind": "follow_up", "in_seconds": 60, "repeat": "cron"}
    llm.script(
        tool_call_reply(
            ("create_reminder", {**every_minute, "cron": "* * * * *"}),
            ("create_reminder", {**every_minute, "cron": "0,1 9 * * *"}),  # two a minute apart
            (
                "create_reminder",
                {"text": "weather", "kind": "follow_up", "in_seconds": 60, "repeat": "daily"},
            ),
            (
                "create_reminder",
                {"text": "stretch", "in_seconds": 60, "repeat": "cron", "cron": "* * * * *"},
            ),
        ),
        text_reply("The daily one is set."),
    )
    outcome = await app.engine.handle(
        IncomingMessage(DM, ALICE, "keep checking"), RecordingSurface()
    )

    minutely, paired, daily, message_kind = outcome.tool_results
    for refused, pattern in ((minutely, "* * * * *"), (paired, "0,1 9 * * *")):
        assert refused.is_error, refused.content
        assert "at most once every 1 hour" in refused.content
        assert f"{pattern!r} would run again after 1 minute" in refused.content
    assert not daily.is_error and not message_kind.is_error  # messages run no model turn
    assert sorted(i.text for i in await app.reminders.list_for(ALICE)) == ["stretch", "weather"]


async def test_a_follow_up_turn_cannot_create_or_cancel_reminders(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    messenger = RecordingMessenger()
    app = await make_app(messengers=(messenger,))
    await app.start_scheduler()
    kept = await app.reminders.create(
        ReminderRequest(ALICE, DM, "", "message", "keep me", NOW + timedelta(days=400), "UTC")
    )
    llm.script(
        tool_call_reply(
            ("create_reminder", {"text": "do it again", "kind": "follow_up", "in_seconds": 1}),
            ("cancel_reminder", {"id": kept.id}),
            ("list_reminders", {}),
        ),
        text_reply("I could not schedule another check from here."),
    )
    follow_up = ReminderRequest(
        ALICE, DM, "", "follow_up", "check and remind me again", datetime.now(UTC), "UTC"
    )
    fired = await app.reminders.create(follow_up)
    await wait_until(lambda: len(messenger.sent) == 1)

    offered = names_offered(llm.requests[0])
    assert "list_reminders" in offered
    assert not offered & {"create_reminder", "cancel_reminder"}
    sent_results = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert all("not available in a scheduled follow-up" in r for r in sent_results[:2])
    assert "keep me" in sent_results[2]
    everything = await app.reminders.list_for(ALICE, include_done=True)
    assert sorted(i.id for i in everything) == [kept.id, fired.id]  # nothing new
    assert [i.status for i in everything if i.id == kept.id] == ["pending"]
    assert messenger.texts == ["⏰ Follow-up: I could not schedule another check from here."]


async def test_list_reminders_in_a_group_shows_only_that_groups(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await app_with_scheduler(make_app)
    group = ChatRef("test", "team-room", ChatKind.GROUP)
    later = datetime.now(UTC) + timedelta(hours=1)
    for chat, text in ((DM, "private: call the doctor"), (group, "team: stand-up")):
        await app.reminders.create(ReminderRequest(ALICE, chat, "", "message", text, later, "UTC"))

    async def listed(chat: ChatRef) -> list[str]:
        llm.script(tool_call_reply(("list_reminders", {})), text_reply("Here they are."))
        outcome = await app.engine.handle(
            IncomingMessage(chat, ALICE, "my reminders?"), RecordingSurface()
        )
        return [r["text"] for r in json.loads(outcome.tool_results[0].content)["reminders"]]

    assert await listed(group) == ["team: stand-up"]
    assert await listed(DM) == ["private: call the doctor", "team: stand-up"]
