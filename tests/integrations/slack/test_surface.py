"""SlackSurface and SlackMessenger against the fake Slack Web API: rates, fallback, limits,
and Slack errors (429s waited out, channel errors logged, never raised)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import ChatKind, ChatRef
from bot.surface import NO_ANSWER
from integrations.slack.convert import (
    ReplyAddress,
    split_text,
    strip_mention,
    to_incoming_message,
)
from integrations.slack.surface import SlackSurface
from integrations.slack.webapi import SlackMessenger
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import (
    ALICE,
    CHANNEL,
    DM_CHANNEL,
    HarnessFactory,
    dm_event,
    mention_event,
    streamed_text,
)


@pytest.fixture
async def client(slack: FakeSlackServer) -> AsyncIterator[AsyncWebClient]:
    session = aiohttp.ClientSession()
    web = AsyncWebClient(token="xoxb-test", base_url=slack.api_url, session=session)
    web.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    yield web
    await session.close()


# The settings' defaults (SlackSettings, BotSettings).
TIMING = {"stream_interval": 0.5, "update_interval": 1.0}


def surface(client: AsyncWebClient, **options: float) -> SlackSurface:
    """A reply in a channel thread; it streams from the first piece unless a
    `preview_delay` is given."""
    return SlackSurface(
        client,
        channel=CHANNEL,
        thread_ts="1700000000.000100",
        user_id=ALICE,
        team_id="T0001",
        **{"preview_delay": 0, **TIMING, **options},  # type: ignore[arg-type]
    )


async def paced(target: SlackSurface, pieces: list[str], every: float) -> None:
    for piece in pieces:
        await target.stream(piece)
        await asyncio.sleep(every)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_streaming_appends_at_most_once_per_interval(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, stream_interval=0.2)
    pieces = [f"word{i} " for i in range(60)]
    started = time.monotonic()
    await paced(reply, pieces, 0.02)
    await reply.finish("".join(pieces))
    elapsed = time.monotonic() - started

    assert slack.count("chat.startStream") == 1 and slack.count("chat.stopStream") == 1
    appends = slack.count("chat.appendStream")
    assert 2 <= appends <= elapsed / 0.2 + 1
    assert min(gaps(slack.call_times["chat.appendStream"])) >= 0.15
    assert streamed_text(slack) == "".join(pieces)


async def test_without_streaming_it_posts_then_updates_throttled_and_never_the_same_text(
    client: AsyncWebClient, slack: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fail("chat.startStream", "method_not_supported_for_channel_type")
    reply = surface(client, update_interval=0.25)
    pieces = [f"w{i} " for i in range(50)]
    with caplog.at_level(logging.INFO):
        await paced(reply, pieces, 0.02)
        await reply.finish("".join(pieces))

    assert reply.mode == "update" and "falling back to chat.update" in caplog.text
    [post] = slack.bodies("chat.postMessage")
    updates = slack.bodies("chat.update")
    # The flusher posts what has arrived by its turn: the first word, or a few on a busy loop.
    assert post["thread_ts"] == "1700000000.000100" and post["text"].startswith("w0 ")
    assert "".join(pieces).startswith(post["text"]) and len(post["text"]) < len("".join(pieces))
    assert updates[-1]["text"] == "".join(pieces) and updates[-1]["ts"] == post["_ts"]
    texts = [post["text"], *(u["text"] for u in updates)]
    assert len(set(texts)) == len(texts), "an update repeated the text"
    # The throttled updates keep their interval; the last one is `finish`'s flush, sent
    # at once (the answer is complete), so its gap is not the throttle's to keep.
    assert len(updates) >= 3  # 50 pieces over at least 1 s: throttled ones, then the last
    assert min(gaps(slack.call_times["chat.update"][:-1])) >= 0.2
    assert updates[-1]["blocks"] == [{"type": "markdown", "text": "".join(pieces)}]


async def test_a_long_answer_is_split_over_messages(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, message_limit=100)
    text = "\n".join(f"line {i:03d} of a long answer" for i in range(20))
    for i in range(0, len(text), 7):
        await reply.stream(text[i : i + 7])
    await reply.finish(text)

    starts = slack.count("chat.startStream")
    assert starts >= 5 and slack.count("chat.stopStream") == starts
    per_message: dict[str, str] = {}
    for method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        for body in slack.bodies(method):
            key = body.get("_ts") or body["ts"]
            per_message[key] = per_message.get(key, "") + body.get("markdown_text", "")
    assert all(len(m) <= 100 for m in per_message.values())
    assert "\n".join(m.strip("\n") for m in per_message.values()) == text


async def test_a_quick_answer_is_one_message_without_status_or_stream(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(preview_delay=2)
    llm.script(text_reply("A **quick** answer.", chunk_size=4))
    event = dm_event("quick one?")
    await harness.event(event)
    [post] = await slack.wait_for("chat.postMessage")
    await asyncio.sleep(0.3)  # anything else the turn sends would arrive by now
    # users.info: the writer's locale, asked once (bot/chat/languages.py).
    assert set(slack.calls) - {"auth.test", "users.info"} == {"chat.postMessage"}
    assert (post["channel"], post["thread_ts"], post["text"]) == (
        DM_CHANNEL,
        event["ts"],
        "A **quick** answer.",
    )
    assert post["blocks"] == [{"type": "markdown", "text": "A **quick** answer."}]


async def test_a_slow_answer_shows_the_status_then_streams_it(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(preview_delay=0.2)
    answer = "Slowly, a few words at a time."
    llm.script(text_reply(answer, chunk_size=4, delay=0.6, chunk_delay=0.1))
    await harness.event(dm_event("take your time"))
    await slack.wait_for("chat.stopStream", within=10)
    [status] = slack.bodies("assistant.threads.setStatus")
    [start] = slack.bodies("chat.startStream")
    assert status["status"] == "is thinking…" and status["_order"] < start["_order"]
    assert slack.count("chat.appendStream") >= 1 and slack.count("chat.postMessage") == 0
    assert streamed_text(slack) == answer


async def test_a_tool_status_is_not_replaced_by_thinking(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(preview_delay=0.2)
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "UTC"})),
        text_reply("It is noon.", delay=0.5),
    )
    await harness.event(dm_event("what time is it?"))
    [post] = await slack.wait_for("chat.postMessage")
    assert post["text"] == "It is noon."
    statuses = [body["status"] for body in slack.bodies("assistant.threads.setStatus")]
    assert statuses == ["is running get_current_time…"]


async def test_text_goes_out_while_the_model_pauses(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, preview_delay=0.1, stream_interval=0.3)
    await reply.stream("Let me think")
    [start] = await slack.wait_for("chat.startStream")  # no further delta needed
    await reply.stream(" about that.")
    [append] = await slack.wait_for("chat.appendStream")
    await reply.finish("Let me think about that.")
    assert start["markdown_text"] == "Let me think" and append["markdown_text"] == " about that."
    assert slack.count("chat.stopStream") == 1
    assert streamed_text(slack) == "Let me think about that."


async def test_text_before_a_tool_is_shown_before_its_status(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, preview_delay=5)
    await reply.start()
    await reply.stream("Let me check.")
    await reply.status("Running get_current_time…")
    await reply.stream("\n\nIt is noon.")
    await reply.finish("Let me check.\n\nIt is noon.")
    [start] = slack.bodies("chat.startStream")
    status, cleared = slack.bodies("assistant.threads.setStatus")
    assert start["markdown_text"] == "Let me check." and start["_order"] < status["_order"]
    assert (status["status"], cleared["status"]) == ("is running get_current_time…", "")
    assert streamed_text(slack) == "Let me check.\n\nIt is noon."


async def test_a_quick_long_answer_is_posted_whole_over_messages(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, preview_delay=5, message_limit=100)
    text = "\n".join(f"line {i:03d} of a long answer" for i in range(20))
    await reply.start()
    for i in range(0, len(text), 7):
        await reply.stream(text[i : i + 7])
    await reply.finish(text)
    posts = [body["text"] for body in slack.bodies("chat.postMessage")]
    assert len(posts) >= 5 and all(len(p) <= 100 for p in posts)
    assert "".join(posts).replace("\n", "") == text.replace("\n", "")
    assert set(slack.calls) == {"chat.postMessage"}


async def test_a_429_is_waited_out_and_the_call_repeated(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(text_reply("After the wait."))
    slack.rate_limit("chat.startStream", retry_after=1)
    await harness.event(dm_event("hi"))
    await slack.wait_for("chat.stopStream", within=10)
    first, second = slack.call_times["chat.startStream"]
    assert second - first >= 1.0
    assert streamed_text(slack) == "After the wait."


async def test_not_in_channel_is_logged_clearly_and_nothing_crashes(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = await make_slack()
    llm.script(text_reply("Nobody will see this."), text_reply("Second one works."))
    slack.fail("assistant.threads.setStatus", "channel_not_found")
    slack.fail("chat.startStream", "not_in_channel")
    with caplog.at_level(logging.WARNING):
        await harness.event(mention_event("hello"))
        for _ in range(300):
            if "not_in_channel" in caplog.text:
                break
            await asyncio.sleep(0.01)
    assert "chat.startStream failed: not_in_channel" in caplog.text
    assert "channel_not_found" in caplog.text and "/invite @Parley" in caplog.text
    assert "Traceback" not in caplog.text and "xoxb-test-token" not in caplog.text

    await harness.event(mention_event("again"))
    await slack.wait_for("chat.stopStream")
    assert "Second one works." in streamed_text(slack)


async def test_the_messenger_posts_to_a_thread_or_a_dm_and_raises_on_failure(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    messenger = SlackMessenger(client)
    await messenger.send(ChatRef("slack", CHANNEL, ChatKind.CHANNEL), "**Reminder**", "171.0002")
    await messenger.send(ChatRef("slack", "D0ALICE"), "hi")
    thread, dm = slack.bodies("chat.postMessage")
    assert (thread["channel"], thread["thread_ts"], thread["text"]) == (
        CHANNEL,
        "171.0002",
        "**Reminder**",
    )
    assert dm["channel"] == "D0ALICE" and "thread_ts" not in dm
    slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError):
        await messenger.send(ChatRef("slack", "C0GONE"), "lost?")


async def test_a_failed_turn_says_so_in_the_thread(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client)
    await reply.start()
    await reply.stream("Partial")
    await reply.fail("Sorry, the model is unavailable.")
    assert streamed_text(slack) == "Partial" and slack.count("chat.stopStream") == 1
    [post] = slack.bodies("chat.postMessage")
    assert post["text"] == "Sorry, the model is unavailable."


def test_split_text_prefers_line_breaks_and_keeps_everything() -> None:
    text = ("a" * 30 + "\n") * 10
    pieces = split_text(text, 100)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) == 4
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]
    assert split_text("") == [""]


def test_incoming_messages_are_keyed_per_thread_in_channels_and_per_dm() -> None:
    mention = mention_event("hi  there", thread_ts="170.1")
    channel, there = to_incoming_message(mention, team_id="T1", event_id="Ev1", bot_user_id="UBOT")
    assert channel.thread_key == "170.1" and channel.text == "hi there"
    assert channel.chat.kind is ChatKind.CHANNEL and channel.event_id == "T1:Ev1"
    # The converter also says where the answer goes, so nobody reads the event again.
    assert there == ReplyAddress(CHANNEL, "170.1", ALICE, "T1")
    direct = dm_event("yo")
    dm, here = to_incoming_message(direct, team_id="T1", event_id="Ev2", bot_user_id="UBOT")
    assert dm.thread_key == "" and dm.chat.kind is ChatKind.DM
    assert here == ReplyAddress(DM_CHANNEL, direct["ts"], ALICE, "T1")
    assert strip_mention("<@UBOT|parley> hello", "UBOT") == "hello"


async def test_a_non_json_error_answer_is_logged_not_raised(
    client: AsyncWebClient, caplog: pytest.LogCaptureFixture
) -> None:
    broken = AsyncWebClient(
        token="xoxb-test", base_url=client.base_url + "../nowhere/", session=client.session
    )
    reply = surface(broken)
    with caplog.at_level(logging.WARNING):
        await reply.start()
        await reply.stream("hi")
        await reply.finish("hi")
    assert "assistant.threads.setStatus failed: HTTP 404" in caplog.text
    assert "chat.postMessage failed: HTTP 404" in caplog.text


async def test_an_empty_answer_shows_the_one_placeholder_every_platform_uses(
    client: AsyncWebClient, slack: FakeSlackServer
) -> None:
    reply = surface(client, preview_delay=5)
    await reply.start()
    await reply.finish("")
    [post] = slack.bodies("chat.postMessage")
    assert post["text"] == NO_ANSWER  # Slack refuses an empty message; this is bot.surface's
