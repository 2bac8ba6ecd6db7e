"""Slack over HTTP: signed events through the real bolt app, answers in the fake Slack."""

from __future__ import annotations

import asyncio
import json
import time

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import (
    ALICE,
    CHANNEL,
    DM_CHANNEL,
    HarnessFactory,
    dm_event,
    event_body,
    mention_event,
    new_ts,
    sign,
    streamed_text,
)


async def settle(seconds: float = 0.3) -> None:
    """Give a (wrongly) started turn time to show itself before asserting it did not."""
    await asyncio.sleep(seconds)


async def test_url_verification_echoes_the_challenge(make_slack: HarnessFactory) -> None:
    harness = await make_slack()
    body = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    status, text = await harness.post(body)
    assert status == 200 and json.loads(text) == {"challenge": "c-123"}


async def test_bad_or_stale_signatures_get_401_and_no_turn(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.set_default(text_reply("should never be sent"))
    body = json.dumps(event_body(dm_event("hi"), "EvBAD1"))
    now = int(time.time())

    bad = await harness.post(body, signature="v0=" + "0" * 64)
    stale_ts = now - 600
    stale = await harness.post(body, timestamp=stale_ts, signature=sign(body, stale_ts))
    tampered = await harness.post(body.replace("hi", "ho"), signature=sign(body, now))

    assert [bad[0], stale[0], tampered[0]] == [401, 401, 401]
    await settle()
    assert llm.requests == []
    assert slack.count("chat.startStream") == 0 and slack.count("chat.postMessage") == 0


async def test_a_dm_turn_with_a_tool_call_streams_with_status(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "Asia/Tokyo"})),
        text_reply("It is **evening** in Tokyo.", chunk_size=4),
    )
    event = dm_event("what time is it in Tokyo?")

    # The model holds its first answer until released: an ack that waited for the turn
    # would never come. (Not a stopwatch: a busy machine must not fail this.)
    llm.hold()
    status, _ = await asyncio.wait_for(harness.event(event), timeout=30)
    turn_unfinished = slack.count("chat.stopStream") == 0
    llm.release()

    assert status == 200 and turn_unfinished
    [stop] = await slack.wait_for("chat.stopStream")
    [start] = slack.bodies("chat.startStream")
    assert start["channel"] == DM_CHANNEL and start["thread_ts"] == event["ts"]
    assert start["recipient_user_id"] == ALICE and start["recipient_team_id"] == "T0001"
    assert stop["ts"] and streamed_text(slack) == "It is **evening** in Tokyo."
    statuses = [body["status"] for body in slack.bodies("assistant.threads.setStatus")]
    assert statuses[:2] == ["is thinking…", "is running get_current_time…"]
    assert llm.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "what time is it in Tokyo?",
    }
    assert llm.requests[1]["messages"][-1]["role"] == "tool"
    assert "Asia/Tokyo" in llm.requests[1]["messages"][-1]["content"]


async def test_an_app_mention_is_answered_in_its_thread_and_the_thread_continues(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(text_reply("First answer."), text_reply("Second answer."))
    mention = mention_event("summarise this")
    await harness.event(mention)
    await slack.wait_for("chat.stopStream")
    [start] = slack.bodies("chat.startStream")
    assert start["channel"] == CHANNEL and start["thread_ts"] == mention["ts"]
    assert llm.requests[0]["messages"][-1]["content"] == "summarise this"

    follow_up = {
        "type": "message",
        "channel": CHANNEL,
        "channel_type": "channel",
        "user": ALICE,
        "text": "and shorter?",
        "ts": new_ts(),
        "thread_ts": mention["ts"],
    }
    await harness.event(follow_up)
    await slack.wait_for("chat.stopStream", 2)
    second = slack.bodies("chat.startStream")[1]
    assert second["thread_ts"] == mention["ts"]
    assert [(m["role"], m["content"]) for m in llm.requests[1]["messages"][1:]] == [
        ("user", "summarise this"),
        ("assistant", "First answer."),
        ("user", "and shorter?"),
    ]


async def test_a_thread_the_bot_answered_is_still_followed_after_a_restart(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    first = await make_slack()
    llm.script(text_reply("Noted."), text_reply("Still here."))
    mention = mention_event("remember 42")
    await first.event(mention)
    await slack.wait_for("chat.stopStream")
    await first.close()

    second = await make_slack()
    await second.event(
        {
            "type": "message",
            "channel": CHANNEL,
            "channel_type": "channel",
            "user": ALICE,
            "text": "what number?",
            "ts": new_ts(),
            "thread_ts": mention["ts"],
        }
    )
    await slack.wait_for("chat.stopStream", 2)
    assert llm.requests[1]["messages"][-2]["content"] == "Noted."


async def test_channel_chatter_subtypes_and_own_messages_start_no_turn(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.set_default(text_reply("should never be sent"))
    plain = {"type": "message", "channel": CHANNEL, "channel_type": "channel"}
    await harness.event({**plain, "user": ALICE, "text": "lunch?", "ts": new_ts()})
    await harness.event(
        {**plain, "user": ALICE, "text": "in a thread", "ts": new_ts(), "thread_ts": "1.000001"}
    )
    await harness.event(dm_event("edited", subtype="message_changed"))
    await harness.event(dm_event("joined", subtype="channel_join"))
    await harness.event(dm_event("from a bot", bot_id="BOTHER"))
    await harness.event(dm_event("from myself", user="UBOT"))
    await settle()
    assert llm.requests == []
    assert slack.count("chat.startStream") == 0 and slack.count("chat.postMessage") == 0


async def test_a_mention_inside_a_followed_thread_is_one_turn_not_two(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.set_default(text_reply("ok"))
    root = mention_event("start")
    await harness.event(root)
    await slack.wait_for("chat.stopStream")
    # Slack sends both a message and an app_mention event for a mention in a thread.
    ts = new_ts()
    text = "<@UBOT> again"
    await harness.event(
        {
            "type": "message",
            "channel": CHANNEL,
            "channel_type": "channel",
            "user": ALICE,
            "text": text,
            "ts": ts,
            "thread_ts": root["ts"],
        }
    )
    await harness.event(
        {
            "type": "app_mention",
            "channel": CHANNEL,
            "user": ALICE,
            "text": text,
            "ts": ts,
            "thread_ts": root["ts"],
        }
    )
    await slack.wait_for("chat.stopStream", 2)
    await settle()
    assert len(llm.requests) == 2


async def test_a_retry_while_the_first_delivery_runs_gets_no_second_reply(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(text_reply("Only once.", delay=0.5))
    llm.set_default(text_reply("A duplicate!"))
    event = dm_event("hello")

    first = await harness.event(event, event_id="EvDUP1")
    retries = await asyncio.gather(
        harness.event(event, event_id="EvDUP1", retry_num=1),
        harness.event(event, event_id="EvDUP1", retry_num=2),
    )
    assert [first[0], *(status for status, _ in retries)] == [200, 200, 200]
    await slack.wait_for("chat.stopStream")
    await settle()
    assert len(llm.requests) == 1
    assert slack.count("chat.startStream") == 1 and streamed_text(slack) == "Only once."

    # ... and after a restart, a late retry is still recognised.
    await harness.close()
    again = await make_slack()
    status, _ = await again.event(event, event_id="EvDUP1", retry_num=3)
    assert status == 200
    await settle()
    assert len(llm.requests) == 1 and slack.count("chat.startStream") == 1


async def test_the_same_event_id_in_another_workspace_is_a_different_event(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.set_default(text_reply("hi"))
    await harness.event(dm_event("one"), event_id="EvSAME")
    await slack.wait_for("chat.stopStream")
    assert await harness.app.store.claim_event("slack", "A0001", "T0001:EvSAME") is False
    assert await harness.app.store.claim_event("slack", "A0001", "T0002:EvSAME") is True
    # Another Slack app on the same database: its own event ids.
    assert await harness.app.store.claim_event("slack", "A0002", "T0001:EvSAME") is True


async def test_app_home_messages_tab_sets_suggested_prompts(
    make_slack: HarnessFactory, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    home = {"type": "app_home_opened", "user": ALICE, "channel": DM_CHANNEL, "tab": "messages"}
    await harness.event(home)
    await harness.event(home)
    await harness.event({**home, "channel": "D0OTHER", "tab": "home"})
    [body] = await slack.wait_for("assistant.threads.setSuggestedPrompts")
    await settle(0.1)
    assert slack.count("assistant.threads.setSuggestedPrompts") == 1
    assert body["channel_id"] == DM_CHANNEL and "thread_ts" not in body
    assert body["prompts"] and all({"title", "message"} <= set(p) for p in body["prompts"])


async def test_a_bare_mention_gets_a_hint_not_a_model_call(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.set_default(text_reply("should never be sent"))
    mention = mention_event("")
    await harness.event(mention)
    [hint] = await slack.wait_for("chat.postMessage")
    assert hint["thread_ts"] == mention["ts"] and "/parley help" in hint["text"]
    assert llm.requests == []
