"""Socket Mode against a local websocket that speaks Slack's envelope/ack protocol.

slack_sdk asks `apps.connections.open` (on the fake Web API, through PARLEY_SLACK_API_URL)
for the socket URL, so the real aiohttp Socket Mode client connects to the fake server.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import (
    DM_CHANNEL,
    EVE,
    HarnessFactory,
    dm_event,
    event_body,
    streamed_text,
)


async def wait_for_ack(slack: FakeSlackServer, envelope_id: str) -> dict[str, object]:
    for _ in range(500):
        for ack in list(slack.socket_acks):
            if ack.get("envelope_id") == envelope_id:
                return ack
        await asyncio.sleep(0.01)
    raise AssertionError(f"envelope {envelope_id} was never acknowledged")


async def test_socket_mode_acks_envelopes_answers_once_and_has_no_http_route(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(socket_mode=True, signing_secret="")
    assert harness.platform.routes() == []
    [opened] = slack.bodies("apps.connections.open")
    assert opened["_token"] == "xapp-test-token"
    llm.script(text_reply("Hello over the socket.", delay=0.3))
    llm.set_default(text_reply("A duplicate!"))

    body = event_body(dm_event("hi"), "EvSOCK1")
    first = await asyncio.to_thread(slack.push_envelope, body)
    retry = await asyncio.to_thread(slack.push_envelope, body, retry_attempt=1)
    await wait_for_ack(slack, first)
    await wait_for_ack(slack, retry)

    [stop] = await slack.wait_for("chat.stopStream")
    await asyncio.sleep(0.3)
    assert len(llm.requests) == 1 and slack.count("chat.startStream") == 1
    assert streamed_text(slack) == "Hello over the socket."
    assert slack.bodies("chat.startStream")[0]["channel"] == DM_CHANNEL and stop["ts"]


async def test_a_socket_event_without_a_channel_is_ignored_without_a_traceback(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Socket Mode has no door that checks an event's shape: the adapter ignores a DM
    message without its channel (one warning), and answers the next one."""
    harness = await make_slack(socket_mode=True, signing_secret="")
    assert harness.platform.routes() == []
    llm.script(text_reply("Still here."))
    broken = {key: value for key, value in dm_event("hi", user=EVE).items() if key != "channel"}

    with caplog.at_level(logging.WARNING):
        await wait_for_ack(
            slack, await asyncio.to_thread(slack.push_envelope, event_body(broken, "EvB"))
        )
        # Its listener has run once Parley asked Slack about its user (bolt's middleware).
        await slack.wait_until(
            lambda: any(b.get("user") == EVE for b in slack.bodies("users.info")),
            lambda: str(slack.bodies("users.info")),
        )
        await asyncio.to_thread(slack.push_envelope, event_body(dm_event("hi"), "EvGOOD"))
        await slack.wait_for("chat.stopStream")

    assert streamed_text(slack) == "Still here." and len(llm.requests) == 1
    assert "slack: a message event without channel or user was ignored" in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
