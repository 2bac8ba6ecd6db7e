"""Slack's agent features through the real adapter: session status and title, tool calls
as stream tasks, feedback buttons, and the fallback to the assistant status."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp
import httpx
import pytest
from pydantic import BaseModel
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import ToolContext, ToolProgress
from bot.toolkit import tool
from integrations.slack.sessions import FEEDBACK_ACTION, task_chunk
from tests.apps import DEFAULT_TOOLS, wait_until
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import (
    ALICE,
    CHANNEL,
    DM_CHANNEL,
    EVE,
    HarnessFactory,
    dm_event,
    mention_event,
    new_ts,
    streamed_text,
)
from tests.web.console_harness import PASSWORD, csrf_of, sign_in


def tasks(slack: FakeSlackServer) -> list[dict[str, object]]:
    """Every task chunk streamed, in call order."""
    bodies = sorted(
        (body["_order"], chunk)
        for method in ("chat.startStream", "chat.appendStream", "chat.stopStream")
        for body in slack.bodies(method)
        if "_failed" not in body
        for chunk in body.get("chunks") or []
        if chunk.get("type") == "task_update"
    )
    return [chunk for _, chunk in bodies]


async def test_an_answer_with_two_tool_calls_streams_two_tasks_that_end_complete(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    harness = await make_slack(agent_sessions=True)
    llm.script(
        tool_call_reply(
            ("get_current_time", {"timezone": "Asia/Tokyo"}),
            ("get_current_time", {"timezone": "Europe/Paris"}),
        ),
        text_reply("Evening in Tokyo, noon in Paris.", chunk_size=6),
    )

    await harness.event(dm_event("What time is it in Tokyo and Paris?"))
    [stop] = await slack.wait_for("chat.stopStream")
    await slack.wait_for("agents.sessions.setStatus", 2)

    shown = tasks(slack)
    ids = {chunk["id"] for chunk in shown}
    assert len(ids) == 2
    for task_id in ids:
        mine = [chunk["status"] for chunk in shown if chunk["id"] == task_id]
        assert mine == ["in_progress", "complete"]
    assert all(chunk["title"] == "Running get_current_time…" for chunk in shown)
    assert all(chunk.get("output") for chunk in shown if chunk["status"] == "complete")
    [start] = slack.bodies("chat.startStream")
    assert start["task_display_mode"] == "timeline" and start["chunks"][0]["type"] == "task_update"
    assert streamed_text(slack) == "Evening in Tokyo, noon in Paris."
    # One message: the tasks, then the answer, ending with the feedback buttons.
    [feedback] = stop["blocks"]
    assert feedback["type"] == "context_actions"
    assert feedback["elements"][0]["action_id"] == FEEDBACK_ACTION
    statuses = slack.bodies("agents.sessions.setStatus")
    assert [body["status"] for body in statuses] == ["processing", "active"]
    assert statuses[0]["channel_id"] == DM_CHANNEL
    assert statuses[0]["title"] == "What time is it in Tokyo and Paris?"
    assert slack.bodies("assistant.threads.setStatus") == []


async def test_a_quick_answer_is_one_message_with_feedback_buttons(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    harness = await make_slack(agent_sessions=True, preview_delay=5)
    llm.script(text_reply("Hello!"))

    await harness.event(dm_event("hi"))
    [post] = await slack.wait_for("chat.postMessage")

    assert [block["type"] for block in post["blocks"]] == ["markdown", "context_actions"]
    assert slack.bodies("chat.startStream") == []


async def test_a_workspace_without_agent_sessions_gets_the_assistant_status_remembered(
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    make_slack: HarnessFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack.speak_assistant_api_only()
    harness = await make_slack(agent_sessions=True)
    llm.script(text_reply("One.", chunk_size=2), text_reply("Two.", chunk_size=2))

    with caplog.at_level(logging.INFO, "integrations.slack.sessions"):
        await harness.event(dm_event("first"))
        await slack.wait_for("chat.stopStream")
        await harness.event(dm_event("second"))
        await slack.wait_for("chat.stopStream", 2)

    assert len(slack.bodies("agents.sessions.setStatus")) == 1  # unknown once, then not asked
    assert [b["status"] for b in slack.bodies("assistant.threads.setStatus")][:1] == [
        "is thinking…"
    ]
    assert sum("agents.sessions.setStatus" in r.getMessage() for r in caplog.records) == 1


async def test_a_feedback_press_is_stored_once_and_shown_in_the_console(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    harness = await make_slack(
        agent_sessions=True,
        preview_delay=5,
        admin={**DEFAULT_TOOLS, "console_password": PASSWORD},
    )
    llm.script(text_reply("Paris is the capital of France."))
    await harness.event(dm_event("capital of France?"))
    [answer] = await slack.wait_for("chat.postMessage")

    for _ in range(2):  # a double click, or a re-delivered press
        status, _ = await harness.press(
            FEEDBACK_ACTION,
            "down",
            user=ALICE,
            channel=DM_CHANNEL,
            message_ts=answer["_ts"],
            message={"text": answer["text"], "blocks": answer["blocks"]},
        )
        assert status == 200
    base = harness.url.removesuffix("/slack/events")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await sign_in(client)
        channels = await client.get("/admin/channels")
        [channel_id] = re.findall(r'href="/admin/channels/(\d+)"', channels.text)
        page = await client.get(f"/admin/channels/{channel_id}")

    [row] = await harness.app.feedback.of_chat("slack", DM_CHANNEL)
    assert (row.voter, row.message_ref, row.helpful) == (f"slack:{ALICE}", answer["_ts"], False)
    assert page.status_code == 200
    assert page.text.count('<tr class="feedback">') == 1
    assert "👎 not helpful" in page.text and "Paris is the capital of France." in page.text


def test_a_task_chunk_keeps_within_slacks_limits() -> None:
    chunk = task_chunk("c1", "x" * 300, "complete", output="first line\nsecond line")

    assert len(chunk["title"]) == 256 and chunk["output"] == "first line"
    assert "output" not in task_chunk("c2", "t", "in_progress")


class Nothing(BaseModel):
    pass


# Tool runs that began; tests wait for it with `started`, in whatever loop they run.
STARTED: list[str] = []


@tool()
async def never_ending(params: Nothing, ctx: ToolContext) -> str:
    """Waits for ever (until its turn is stopped)."""
    STARTED.append(ctx.user.platform_user_id)
    await asyncio.Event().wait()
    return "never"


REPORTED = asyncio.Event()


@tool()
async def reporting(params: Nothing, ctx: ToolContext) -> str:
    """Says how far it is, then waits until the test lets it finish."""
    assert ctx.report is not None
    await ctx.report(ToolProgress(3, 5, "indexing"))
    await REPORTED.wait()
    return "done"


async def test_a_running_calls_task_says_how_far_it_is_in_its_details(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    REPORTED.clear()
    harness = await make_slack([reporting], agent_sessions=True)
    llm.script(tool_call_reply(("reporting", {})), text_reply("Done."))

    await harness.event(dm_event("index it"))
    await slack.wait_for("chat.appendStream")
    REPORTED.set()
    await slack.wait_for("chat.stopStream")

    [started, progressed, ended] = tasks(slack)
    assert (started["status"], started.get("details")) == ("in_progress", None)
    assert progressed["status"] == "in_progress" and progressed["id"] == started["id"]
    assert progressed["details"] == "3 of 5: indexing"
    assert progressed["title"] == started["title"] == "Running reporting…"
    assert ended["status"] == "complete"


async def started(count: int = 1) -> None:
    await wait_until(lambda: len(STARTED) >= count)


async def test_the_stop_press_ends_the_turn_and_keeps_its_question(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    STARTED.clear()
    harness = await make_slack([never_ending], agent_sessions=True)
    llm.script(
        tool_call_reply(("never_ending", {}), text="Let me look."),
        text_reply("Sure, a new question."),
    )
    question = dm_event("look for ever")
    await harness.event(question)
    await started()

    stop = {
        "type": "agent_session_stopped",
        "channel": DM_CHANNEL,
        "thread_ts": question["ts"],
        "user": ALICE,
        "streaming_message_ts": [],
        "event_ts": new_ts(),
    }
    status, _ = await harness.event(stop)
    assert status == 200
    [note] = await slack.wait_for("chat.postMessage")
    await slack.wait_for("agents.sessions.setStatus", 2)

    assert note["text"] == "Stopped. Your question is kept: ask again, or ask something else."
    assert [b["status"] for b in slack.bodies("agents.sessions.setStatus")][-1] == "active"
    assert streamed_text(slack).startswith("Let me look.")
    # The next question finds the stopped one in the history, marked, with no dangling call.
    await harness.event(dm_event("something else"))
    await slack.wait_for("chat.stopStream", 2)
    history = llm.requests[-1]["messages"]
    contents = [m.get("content") for m in history]
    assert "look for ever" in contents
    assert any("stopped this answer" in str(c) for c in contents)
    assert not any(m.get("tool_calls") for m in history)
    assert len(llm.requests) == 2  # the stopped turn was not resumed or retried


async def test_a_stop_press_with_no_turn_running_leaves_the_session_active(
    slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    harness = await make_slack(agent_sessions=True)
    stop = {
        "type": "agent_session_stopped",
        "channel": DM_CHANNEL,
        "thread_ts": "1700000000.000300",
        "user": ALICE,
        "streaming_message_ts": [],
        "event_ts": new_ts(),
    }

    await harness.event(stop)
    [body] = await slack.wait_for("agents.sessions.setStatus")

    assert body["status"] == "active"


async def test_suggested_prompts_set_by_an_admin_in_the_console_are_offered(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    harness = await make_slack(
        agent_sessions=True, admin={**DEFAULT_TOOLS, "console_password": PASSWORD}
    )
    llm.script(text_reply("Hi."))
    await harness.event(dm_event("hello"))  # the conversation's channel is known from now
    await slack.wait_for("chat.stopStream")
    base = harness.url.removesuffix("/slack/events")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        await sign_in(client)
        channels = await client.get("/admin/channels")
        [channel_id] = re.findall(r'href="/admin/channels/(\d+)"', channels.text)
        page = await client.get(f"/admin/channels/{channel_id}")
        csrf = csrf_of(page.text)
        too_many = "\n".join(f"p{i} | m{i}" for i in range(5))
        refused = await client.post(
            f"/admin/channels/{channel_id}/prompts", data={"csrf": csrf, "prompts": too_many}
        )
        saved = await client.post(
            f"/admin/channels/{channel_id}/prompts",
            data={"csrf": csrf, "prompts": "Weather | What is the weather in Beijing?\nHelp"},
        )
        shown = await client.get(f"/admin/channels/{channel_id}")

    assert refused.status_code == 400 and saved.status_code == 303
    assert "Weather | What is the weather in Beijing?" in shown.text
    opened = {"type": "app_home_opened", "user": ALICE, "channel": DM_CHANNEL, "tab": "messages"}
    await harness.event(opened)
    [prompts] = await slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert prompts["prompts"] == [
        {"title": "Weather", "message": "What is the weather in Beijing?"},
        {"title": "Help", "message": "Help"},
    ]


@pytest.mark.parametrize(
    ("chunk", "reason"),
    [
        ({"type": "task_update", "id": "t1", "title": "x", "status": "running"}, "status"),
        ({"type": "task_update", "id": "t1", "status": "complete"}, "title"),
        (
            {
                "type": "task_update",
                "id": "t1",
                "title": "x",
                "status": "error",
                "output": "o" * 257,
            },
            "256",
        ),
        ({"type": "progress", "text": "x"}, "type"),
    ],
)
async def test_the_fake_refuses_task_chunks_slack_refuses(
    slack: FakeSlackServer, chunk: dict[str, object], reason: str
) -> None:
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url, session=session)
        with pytest.raises(SlackApiError) as refused:
            await client.chat_appendStream(channel=DM_CHANNEL, ts="1.000001", chunks=[chunk])

    assert refused.value.response["error"] == "invalid_chunks"
    assert reason in refused.value.response["errors"][0]


async def test_another_user_s_stop_leaves_the_asker_s_running_session_alone(
    llm: ScriptedOpenAIServer, slack: FakeSlackServer, make_slack: HarnessFactory
) -> None:
    STARTED.clear()
    harness = await make_slack([never_ending], agent_sessions=True)
    llm.script(
        tool_call_reply(("never_ending", {}), text="Let me look."),
        text_reply("Next."),
    )
    question = mention_event("look for ever")
    await harness.event(question)
    await started()
    statuses = len(slack.bodies("agents.sessions.setStatus"))

    def stop_by(user: str) -> dict[str, object]:
        return {
            "type": "agent_session_stopped",
            "channel": CHANNEL,
            "thread_ts": question["ts"],
            "user": user,
            "streaming_message_ts": [],
            "event_ts": new_ts(),
        }

    await harness.event(stop_by(EVE))
    [told] = await slack.wait_for("chat.postEphemeral")
    assert (told["user"], told["text"]) == (EVE, "Only the person who asked can stop this answer.")
    assert len(slack.bodies("agents.sessions.setStatus")) == statuses  # still processing
    assert not slack.bodies("chat.postMessage")  # Alice's turn runs on

    await harness.event(stop_by(ALICE))
    [note] = await slack.wait_for("chat.postMessage")
    assert note["text"].startswith("Stopped.")
