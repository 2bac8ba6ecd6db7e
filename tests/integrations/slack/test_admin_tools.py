"""`/parley tools` checkboxes: admins change a channel's tools, others are refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.storage.models import AuditEntry
from integrations.slack.commands import tools_blocks
from tests.apps import two_providers
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import TEAM_ID, FakeSlackServer
from tests.integrations.slack.harness import (
    ALICE,
    CHANNEL,
    EVE,
    HarnessFactory,
    SlackHarness,
    mention_event,
    new_ts,
)
from tools.clock import get_current_time


def checkboxes(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    [element] = [b["elements"][0] for b in blocks if b["type"] == "actions"]
    return element


async def press_checkboxes(
    harness: SlackHarness, slack: FakeSlackServer, *, user: str, selected: list[str]
) -> tuple[int, str]:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "team_id": TEAM_ID, "username": user.lower()},
        "api_app_id": "A0001",
        "token": "legacy",
        "container": {"type": "message", "message_ts": new_ts(), "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "trigger_id": "trigger",
        "response_url": f"http://127.0.0.1:{slack.port}/response/tools",
        "actions": [
            {
                "action_id": "parley_tools:0",
                "block_id": "parley_tools:0",
                "type": "checkboxes",
                "selected_options": [{"value": name} for name in selected],
                "action_ts": new_ts(),
            }
        ],
    }
    return await harness.form({"payload": json.dumps(payload)})


async def audit(harness: SlackHarness) -> list[AuditEntry]:
    async with harness.app.database.read() as session:
        result = await session.exec(select(AuditEntry).order_by(AuditEntry.id))  # type: ignore[call-overload]
        return list(result.scalars())


async def test_an_admin_unticks_a_tool_and_the_next_turn_goes_without_it(
    make_slack: HarnessFactory, slack: FakeSlackServer, llm: ScriptedOpenAIServer
) -> None:
    harness = await make_slack(tools=(get_current_time,))
    slack.users[ALICE] = {"is_admin": True}
    _, text = await harness.command("tools", channel=CHANNEL)
    element = checkboxes(json.loads(text)["blocks"])
    assert [o["value"] for o in element["options"]] == ["get_current_time"]
    assert [o["value"] for o in element["initial_options"]] == ["get_current_time"]

    status, _ = await press_checkboxes(harness, slack, user=ALICE, selected=[])
    assert status == 200
    [redraw] = await slack.wait_for("response_url")
    assert redraw["replace_original"] is True
    assert "Saved: get_current_time off" in redraw["text"]
    assert "initial_options" not in checkboxes(redraw["blocks"])

    llm.set_default(text_reply("no clock here"))
    await harness.event(mention_event("what time is it?"))
    await slack.wait_for("chat.stopStream")
    assert "tools" not in llm.requests[0]
    [entry] = await audit(harness)
    assert (entry.actor, entry.place, entry.surface, entry.allowed) == (
        f"slack:{ALICE}",
        f"slack:{CHANNEL}",
        "slack",
        True,
    )


async def test_a_non_admin_is_refused_told_and_audited(
    make_slack: HarnessFactory, slack: FakeSlackServer, llm: ScriptedOpenAIServer
) -> None:
    harness = await make_slack(tools=(get_current_time,))
    slack.users[EVE] = {"is_admin": False, "is_owner": False}

    await press_checkboxes(harness, slack, user=EVE, selected=[])
    [redraw] = await slack.wait_for("response_url")
    assert "Only admins can change" in redraw["text"]
    assert checkboxes(redraw["blocks"])["initial_options"][0]["value"] == "get_current_time"
    [entry] = await audit(harness)
    assert entry.actor == f"slack:{EVE}" and entry.allowed is False
    assert [b["user"] for b in admin_checks(slack)] == [EVE]

    llm.set_default(text_reply("tick tock"))
    await harness.event(mention_event("time?"))
    await slack.wait_for("chat.stopStream")
    assert [t["function"]["name"] for t in llm.requests[0]["tools"]] == ["get_current_time"]


async def test_a_failed_admin_check_refuses_once_and_is_not_remembered(
    make_slack: HarnessFactory, slack: FakeSlackServer
) -> None:
    harness = await make_slack(tools=(get_current_time,))
    slack.users[ALICE] = {"is_admin": True}
    # The press's locale lookup fails too (and is asked again), then the admin check.
    slack.fail("users.info", "internal_error", times=2)

    await press_checkboxes(harness, slack, user=ALICE, selected=[])
    [refused] = await slack.wait_for("response_url")
    await press_checkboxes(harness, slack, user=ALICE, selected=[])
    [_, saved] = await slack.wait_for("response_url", 2)

    assert "Only admins" in refused["text"] and "Saved" in saved["text"]
    assert len(admin_checks(slack)) == 2


async def test_parley_admins_may_change_without_asking_slack(
    make_slack: HarnessFactory, slack: FakeSlackServer
) -> None:
    harness = await make_slack(
        tools=(get_current_time,), admin={"admins": f"slack:{EVE}", "default_tools_group": "all"}
    )
    await press_checkboxes(harness, slack, user=EVE, selected=[])
    [redraw] = await slack.wait_for("response_url")
    assert "Saved" in redraw["text"]
    assert admin_checks(slack) == []


def test_many_tools_are_split_into_groups_of_ten() -> None:
    many = [
        (dataclasses.replace(get_current_time, name=f"tool_{i:02d}"), i % 2 == 0) for i in range(23)
    ]
    blocks = tools_blocks(many)
    groups = [b for b in blocks if b["type"] == "actions"]
    assert [len(g["elements"][0]["options"]) for g in groups] == [10, 10, 3]
    assert [g["elements"][0]["action_id"] for g in groups] == [
        "parley_tools:0",
        "parley_tools:1",
        "parley_tools:2",
    ]
    assert [o["value"] for o in groups[2]["elements"][0]["initial_options"]] == [
        "tool_20",
        "tool_22",
    ]


def admin_checks(slack: FakeSlackServer) -> list[dict[str, Any]]:
    """The users.info calls that asked whether someone is an admin (not their locale)."""
    return [
        b
        for b in slack.bodies("users.info")
        if str(b.get("include_locale")) not in ("1", "true", "True")
    ]


async def test_parley_provider_is_chosen_by_admins_only(
    make_slack: HarnessFactory,
    slack: FakeSlackServer,
    llm: ScriptedOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`/parley provider`, with the same words as in Telegram: shown to all, chosen by a
    workspace admin (asked of Slack), refused and audited for anyone else."""
    harness = await make_slack(
        tools=(), llm_settings=two_providers(tmp_path, llm.base_url, monkeypatch)
    )
    slack.users[ALICE] = {"is_admin": True}
    slack.users[EVE] = {"is_admin": False, "is_owner": False}

    async def command(text: str, user: str) -> str:
        status, body = await harness.command(text, user=user, channel=CHANNEL)
        assert status == 200
        return str(json.loads(body)["text"])

    shown = await command("provider", EVE)
    assert "This chat is answered by primary." in shown
    assert "`/parley provider backup`" in shown and "`/parley provider default`" in shown
    assert "Only admins can choose" in await command("provider backup", EVE)
    assert "Known providers: primary, backup." in await command("provider claude", ALICE)
    assert await command("provider backup", ALICE) == "This chat is now answered by backup."

    llm.set_default(text_reply("Backup here."))
    await harness.event(mention_event("hello"))
    await slack.wait_for("chat.stopStream")
    assert llm.requests[-1]["model"] == "backup-model"
    entries = [e for e in await audit(harness) if e.action == "channel.provider"]
    assert [(e.actor, e.surface, e.allowed) for e in entries] == [
        (f"slack:{EVE}", "slack", False),
        (f"slack:{ALICE}", "slack", True),
    ]
    assert [b["user"] for b in admin_checks(slack)] == [EVE, ALICE]
