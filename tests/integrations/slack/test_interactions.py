"""Slash commands and confirmation buttons, through the signed HTTP endpoint."""

from __future__ import annotations

import asyncio
import json

from pydantic import BaseModel

from bot.domain import ToolContext
from bot.toolkit import tool
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
)
from tools.clock import get_current_time

LAUNCHED: list[str] = []


class LaunchParams(BaseModel):
    target: str


@tool(side_effect=True)
async def launch(params: LaunchParams, ctx: ToolContext) -> str:
    """Launch something; cannot be undone."""
    LAUNCHED.append(params.target)
    return f"launched {params.target}"


async def test_slash_tools_shows_this_channels_tools_as_block_kit(
    make_slack: HarnessFactory,
) -> None:
    harness = await make_slack(tools=(get_current_time, launch))
    status, text = await harness.command("tools", channel=CHANNEL)
    assert status == 200
    reply = json.loads(text)
    assert reply["response_type"] == "ephemeral"
    [element] = [b["elements"][0] for b in reply["blocks"] if b["type"] == "actions"]
    assert element["type"] == "checkboxes"
    texts = {o["value"]: o["text"]["text"] for o in element["options"]}
    assert texts == {"get_current_time": "*get_current_time*", "launch": "*launch* :warning:"}
    assert {o["value"] for o in element["initial_options"]} == {"get_current_time", "launch"}
    assert "get_current_time" in reply["text"]


async def test_slash_help_reset_and_unknown(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    _, help_text = await harness.command("")
    assert "/parley tools" in json.loads(help_text)["text"]

    llm.set_default(text_reply("hi"))
    await harness.event(dm_event("remember me"))
    await slack.wait_for("chat.stopStream")
    _, reset = await harness.command("reset")
    assert json.loads(reset)["text"] == "Started a new conversation."
    await harness.event(dm_event("who am I?"))
    await slack.wait_for("chat.stopStream", 2)
    assert [m["role"] for m in llm.requests[1]["messages"]] == ["system", "user"]

    _, in_channel = await harness.command("reset", channel=CHANNEL)
    assert "thread" in json.loads(in_channel)["text"]
    _, unknown = await harness.command("dance")
    assert "I don't know `/parley dance`" in json.loads(unknown)["text"]


async def confirmation_message(slack: FakeSlackServer) -> tuple[str, str, str]:
    """(channel, ts, token) of the confirmation Parley posted."""
    for _ in range(200):
        for body in slack.bodies("chat.postMessage"):
            for block in body.get("blocks") or []:
                if block.get("type") == "actions":
                    # the fake answers ts in order; find it by re-deriving from the call order
                    token = block["elements"][0]["value"]
                    return body["channel"], body["_ts"], token
        await asyncio.sleep(0.01)
    raise AssertionError("no confirmation was posted")


async def test_a_confirmation_pressed_by_someone_else_is_refused(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,))
    llm.script(
        tool_call_reply(("launch", {"target": "rocket"}), text="On it."), text_reply("Launched.")
    )
    await harness.event(mention_event("launch the rocket"))
    channel, ts, token = await confirmation_message(slack)
    # The text before the question is a finished message; the answer follows the question.
    [first_stop] = slack.bodies("chat.stopStream")
    [question] = slack.bodies("chat.postMessage")
    assert first_stop["_order"] < question["_order"]

    status, _ = await harness.press(
        "parley_confirm_yes", token, user=EVE, channel=channel, message_ts=ts
    )
    assert status == 200
    [ephemeral] = await slack.wait_for("chat.postEphemeral")
    assert ephemeral["user"] == EVE and "not yours" in ephemeral["text"]
    await asyncio.sleep(0.2)
    assert LAUNCHED == [] and len(llm.requests) == 1

    await harness.press("parley_confirm_yes", token, user=ALICE, channel=channel, message_ts=ts)
    await slack.wait_for("chat.stopStream", 2)
    assert LAUNCHED == ["rocket"]
    assert slack.bodies("chat.startStream")[1]["_order"] > question["_order"]
    assert any(
        b["ts"] == ts and "Confirmed by <@UALICE>" in b["text"] for b in slack.bodies("chat.update")
    )
    assert llm.requests[1]["messages"][-1]["content"] == "launched rocket"

    # A second press of an answered request is told so, and changes nothing.
    await harness.press("parley_confirm_no", token, user=ALICE, channel=channel, message_ts=ts)
    ephemerals = await slack.wait_for("chat.postEphemeral", 2)
    assert "expired or was already answered" in ephemerals[1]["text"]
    assert LAUNCHED == ["rocket"]


async def test_cancel_and_timeout_both_mean_no(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,))
    llm.script(
        tool_call_reply(("launch", {"target": "a"})),
        text_reply("Cancelled then."),
        tool_call_reply(("launch", {"target": "b"})),
        text_reply("Timed out then."),
    )
    await harness.event(dm_event("launch a"))
    channel, ts, token = await confirmation_message(slack)
    await harness.press("parley_confirm_no", token, user=ALICE, channel=channel, message_ts=ts)
    await slack.wait_for("chat.stopStream")
    assert "did not confirm" in llm.requests[1]["messages"][-1]["content"]

    harness.platform.confirm_timeout = 0.2
    slack.reset()
    await harness.event(dm_event("launch b"))
    await slack.wait_for("chat.stopStream")
    assert LAUNCHED == []
    assert any("Not confirmed in time" in b["text"] for b in slack.bodies("chat.update"))
    assert len(harness.platform.desk.confirmations) == 0
    assert channel == DM_CHANNEL


async def test_no_thinking_status_while_waiting_for_a_press(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,), preview_delay=0.2)
    llm.script(tool_call_reply(("launch", {"target": "probe"})), text_reply("Probe launched."))
    await harness.event(dm_event("launch the probe"))
    channel, ts, token = await confirmation_message(slack)
    await asyncio.sleep(0.5)  # well past the preview delay, still waiting for the press
    assert slack.count("assistant.threads.setStatus") == 0

    await harness.press("parley_confirm_yes", token, user=ALICE, channel=channel, message_ts=ts)
    answer = (await slack.wait_for("chat.postMessage", 2))[1]
    assert answer["text"] == "Probe launched." and LAUNCHED == ["probe"]
    statuses = [body["status"] for body in slack.bodies("assistant.threads.setStatus")]
    assert statuses == ["is running launch…"]


async def test_slash_memory_and_forget(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack()
    llm.script(
        tool_call_reply(("remember", {"text": "My team is in Hangzhou", "scope": "everywhere"})),
        text_reply("Noted."),
    )
    await harness.event(dm_event("remember that my team is in Hangzhou"))
    await slack.wait_for("chat.stopStream")

    _, listed = await harness.command("memory")
    reply = json.loads(listed)
    assert reply["response_type"] == "ephemeral"
    assert "My team is in Hangzhou (shared everywhere)" in reply["text"]
    _, in_channel = await harness.command("memory", channel=CHANNEL)
    assert "My team is in Hangzhou" in json.loads(in_channel)["text"]
    _, forgot = await harness.command("forget all")
    assert json.loads(forgot)["text"] == "Forgot 1 fact."
    _, empty = await harness.command("memory")
    assert "I don't remember anything about you" in json.loads(empty)["text"]
