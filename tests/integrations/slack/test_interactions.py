"""Slash commands and confirmation buttons, through the signed HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from bot.approvals.gate import Mode
from bot.domain import ChatKind, ChatRef, ToolContext
from bot.toolkit import tool
from tests.apps import wait_until
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
from tools.email import send_email

LAUNCHED: list[str] = []
# Email that can be asked about (the SMTP server is never reached: every test denies).
EMAIL = {
    "host": "127.0.0.1",
    "port": 9,
    "tls": "none",
    "sender": "parley@bot.example.com",
    "allowlist": "@example.com",
}


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


async def confirmation_message(
    slack: FakeSlackServer, method: str = "chat.postMessage"
) -> tuple[str, str, str, dict[str, Any]]:
    """(channel, ts, token, body) of the approval question Parley posted with `method`."""
    for _ in range(500):
        for body in slack.bodies(method):
            for block in body.get("blocks") or []:
                if block.get("type") == "actions":
                    token = block["elements"][0]["value"]
                    return body["channel"], body["_ts"], token, body
        await asyncio.sleep(0.01)
    raise AssertionError("no approval question was posted")


def buttons(body: dict[str, Any]) -> list[str]:
    [actions] = [block for block in body["blocks"] if block["type"] == "actions"]
    return [element["text"]["text"] for element in actions["elements"]]


async def test_in_a_channel_only_the_asker_sees_the_question_and_only_they_answer(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,))
    llm.script(
        tool_call_reply(("launch", {"target": "rocket"}), text="On it."), text_reply("Launched.")
    )
    await harness.event(mention_event("launch the rocket"))
    channel, ts, token, question = await confirmation_message(slack, "chat.postEphemeral")
    assert question["user"] == ALICE and channel == CHANNEL
    assert buttons(question) == ["Approve once", "Always allow", "Deny"]
    assert question["blocks"][0]["text"]["text"].startswith("<@UALICE>: Run launch\ntarget: rocket")
    # The text before the question is a finished message; the answer follows the question.
    [first_stop] = slack.bodies("chat.stopStream")
    assert first_stop["_order"] < question["_order"]
    assert not any(b.get("blocks") for b in slack.bodies("chat.postMessage"))

    status, _ = await harness.press(
        "parley_approval_once", token, user=EVE, channel=channel, message_ts=ts, ephemeral=True
    )
    assert status == 200
    refusal = (await slack.wait_for("chat.postEphemeral", 2))[1]
    assert refusal["user"] == EVE and "not yours" in refusal["text"]
    await asyncio.sleep(0.2)
    assert LAUNCHED == [] and len(llm.requests) == 1

    await harness.press(
        "parley_approval_once",
        token,
        user=ALICE,
        channel=channel,
        message_ts=ts,
        ephemeral=True,
        response_url=slack.response_url,
    )
    await slack.wait_for("chat.stopStream", 2)
    assert LAUNCHED == ["rocket"]
    [replaced] = await slack.wait_for("response_url")
    assert replaced["replace_original"] is True and "Approved once" in replaced["text"]
    assert llm.requests[1]["messages"][-1]["content"] == "launched rocket"

    # A second press of an answered question is told so, and changes nothing.
    await harness.press(
        "parley_approval_denied", token, user=ALICE, channel=channel, message_ts=ts, ephemeral=True
    )
    ephemerals = await slack.wait_for("chat.postEphemeral", 3)
    assert "already answered" in ephemerals[2]["text"]
    assert LAUNCHED == ["rocket"]


async def test_deny_and_expiry_both_mean_no(
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
    channel, ts, token, _ = await confirmation_message(slack)
    assert channel == DM_CHANNEL  # a DM is the asker's own: a plain message
    await harness.press("parley_approval_denied", token, user=ALICE, channel=channel, message_ts=ts)
    await slack.wait_for("chat.stopStream")
    assert "did not confirm" in llm.requests[1]["messages"][-1]["content"]
    assert any(b["ts"] == ts and "Denied" in b["text"] for b in slack.bodies("chat.update"))

    harness.app.approvals.timeout = timedelta(seconds=0.3)
    slack.reset()
    await harness.event(dm_event("launch b"))
    channel, ts, token, _ = await confirmation_message(slack)
    await slack.wait_for("chat.stopStream")
    assert LAUNCHED == []
    assert any("No answer in time" in b["text"] for b in slack.bodies("chat.update"))
    assert len(harness.app.approvals) == 0
    # A press after the expiry is told the question expired.
    await harness.press("parley_approval_once", token, user=ALICE, channel=channel, message_ts=ts)
    [late] = await slack.wait_for("chat.postEphemeral")
    assert "expired" in late["text"] and LAUNCHED == []


async def test_always_allow_then_the_next_call_runs_without_a_question(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,))
    llm.script(
        tool_call_reply(("launch", {"target": "one"})),
        text_reply("First."),
        tool_call_reply(("launch", {"target": "two"})),
        text_reply("Second."),
    )
    await harness.event(dm_event("launch one"))
    channel, ts, token, _ = await confirmation_message(slack)
    await harness.press("parley_approval_always", token, user=ALICE, channel=channel, message_ts=ts)
    await wait_until(lambda: LAUNCHED == ["one"])
    await slack.wait_for("chat.stopStream")
    slack.reset()
    await harness.event(dm_event("launch two"))
    await slack.wait_for("chat.stopStream")
    assert LAUNCHED == ["one", "two"]
    assert not any(
        b.get("blocks") and "Approve" in json.dumps(b["blocks"])
        for b in slack.bodies("chat.postMessage")
    )

    # /tools lists the standing approval; "revoke N" takes it back and it asks again.
    _, listing = await harness.command("tools", user=ALICE, channel=DM_CHANNEL)
    assert "Always allowed" in listing and "launch in slack:D0ALICE" in listing
    [grant] = await harness.app.approvals.grants()
    _, by_eve = await harness.command(f"tools revoke {grant.id}", user=EVE, channel=DM_CHANNEL)
    assert "no standing approval" in by_eve
    _, revoked = await harness.command(f"tools revoke {grant.id}", user=ALICE, channel=DM_CHANNEL)
    assert "asks again" in revoked
    assert await harness.app.approvals.grants() == []


async def test_a_long_email_card_fits_a_section_and_show_all_sends_the_rest(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    body = "\n".join(f"Paragraph {n}: " + "the quarterly numbers look fine " * 4 for n in range(70))
    body = body[:8000]
    harness = await make_slack(tools=(send_email,), email=EMAIL)
    llm.script(
        tool_call_reply(
            ("send_email", {"to": ["ops@example.com"], "subject": "Report", "body": body})
        ),
        text_reply("Not sent."),
    )
    await harness.event(mention_event("mail the report"))
    channel, ts, token, question = await confirmation_message(slack, "chat.postEphemeral")
    section = question["blocks"][0]["text"]["text"]
    assert len(section) <= 3000 and "Body (8000 characters)" in section
    assert "To: ops@example.com" in section and "Subject: Report" in section
    assert buttons(question)[-1] == "Show all"

    await harness.press(
        "parley_approval_show", token, user=EVE, channel=channel, message_ts=ts, ephemeral=True
    )
    [_, refused] = await slack.wait_for("chat.postEphemeral", 2)
    assert refused["user"] == EVE and "Only the person" in refused["text"]
    await harness.press(
        "parley_approval_show", token, user=ALICE, channel=channel, message_ts=ts, ephemeral=True
    )

    def parts() -> list[str]:
        return [b["text"] for b in slack.bodies("chat.postEphemeral")[2:] if b["user"] == ALICE]

    await wait_until(lambda: len(parts()) == 3)  # 8,000 characters in sections of 3,000
    assert all(len(part) <= 3000 for part in parts())
    assert "".join(parts()).replace("\n", "").endswith(body.replace("\n", ""))
    await harness.press(
        "parley_approval_denied", token, user=ALICE, channel=channel, message_ts=ts, ephemeral=True
    )
    await slack.wait_for("chat.stopStream")


async def test_no_thinking_status_while_waiting_for_a_press(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,), preview_delay=0.2)
    llm.script(tool_call_reply(("launch", {"target": "probe"})), text_reply("Probe launched."))
    await harness.event(dm_event("launch the probe"))
    channel, ts, token, _ = await confirmation_message(slack)
    await asyncio.sleep(0.5)  # well past the preview delay, still waiting for the press
    assert slack.count("assistant.threads.setStatus") == 0

    await harness.press("parley_approval_once", token, user=ALICE, channel=channel, message_ts=ts)
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


async def test_slash_command_numbers_that_are_not_plain_numbers_get_a_clear_answer(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer
) -> None:
    harness = await make_slack()
    huge = "1234567890123456789012345"

    _, forget = await harness.command("forget ²", user=ALICE, channel=DM_CHANNEL)
    _, forget_huge = await harness.command(f"forget {huge}", user=ALICE, channel=DM_CHANNEL)
    _, revoke = await harness.command("tools revoke ²", user=ALICE, channel=DM_CHANNEL)

    assert "/forget followed by its number" in json.loads(forget)["text"]
    assert "/forget followed by its number" in json.loads(forget_huge)["text"]
    assert json.loads(revoke)["text"] == "You have no standing approval ²."
    assert llm.requests == []


async def test_a_forged_always_press_on_a_card_without_it_is_no_grant(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    """The rule is "ask": the card has no "Always allow"; a press that says so anyway
    (a forged payload) approves this call once and stores nothing."""
    LAUNCHED.clear()
    harness = await make_slack(tools=(launch,))
    app = harness.app
    channel_id = await app.store.channel_id(ChatRef("slack", DM_CHANNEL, ChatKind.DM))
    refusal = await app.approvals.set_rule(
        channel_id=channel_id,
        place=f"slack:{DM_CHANNEL}",
        item=launch,
        mode=Mode.ASK,
        actor="console",
        surface="console",
        is_admin=True,
    )
    assert refusal == ""
    llm.script(tool_call_reply(("launch", {"target": "one"})), text_reply("Launched."))

    await harness.event(dm_event("launch one"))
    channel, ts, token, body = await confirmation_message(slack)
    assert "Always allow" not in buttons(body)
    await harness.press("parley_approval_always", token, user=ALICE, channel=channel, message_ts=ts)
    await slack.wait_for("chat.stopStream")

    assert LAUNCHED == ["one"]
    assert await app.approvals.grants() == []
    assert any(b["ts"] == ts and "Approved once" in b["text"] for b in slack.bodies("chat.update"))


async def test_a_card_shows_bidi_controls_escaped_and_idn_domains_in_ascii(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(tools=(send_email,), email={**EMAIL, "allowlist": "@bücher.example"})
    arguments = {
        "to": ["anna@bücher.example"],
        "subject": "Invoice \u202egpj.exe",  # shows as "Invoice exe.jpg" unescaped
        "body": "Pay \u2066now\u2069 please.",
    }
    llm.script(tool_call_reply(("send_email", arguments)), text_reply("Not sent."))

    await harness.event(dm_event("email anna"))
    _, ts, token, body = await confirmation_message(slack)
    shown = json.dumps(body["blocks"], ensure_ascii=False)
    await harness.press(
        "parley_approval_denied", token, user=ALICE, channel=DM_CHANNEL, message_ts=ts
    )
    await slack.wait_for("chat.stopStream")

    assert not any(c in shown for c in "\u202e\u2066\u2069")
    assert "Invoice \\\\u202egpj.exe" in shown  # a backslash, escaped once more by JSON
    assert "Pay \\\\u2066now\\\\u2069 please." in shown
    assert "anna@xn--bcher-kva.example" in shown and "bücher" not in shown
