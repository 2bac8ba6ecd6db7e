"""A Slack user whose locale is zh-CN reads Parley in Chinese: the slash command's help and
tool blocks, an approval card and its buttons, a reminder delivery and a refused file; the
locale comes from users.info (include_locale) once, not on every message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain import ChatKind, ChatRef, ReminderRequest, UserRef
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import ALICE, DM_CHANNEL, HarnessFactory, dm_event
from tests.integrations.slack.test_interactions import EMAIL, buttons, confirmation_message
from tools.clock import get_current_time
from tools.email import send_email

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)


def locale_lookups(slack: FakeSlackServer) -> list[dict[str, Any]]:
    return [b for b in slack.bodies("users.info") if str(b.get("include_locale")) in ("1", "true")]


async def test_a_zh_cn_slack_user_reads_help_tools_an_approval_and_a_reminder_in_chinese(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    slack.users[ALICE] = {"locale": "zh-CN"}
    harness = await make_slack(tools=(get_current_time, send_email), email=EMAIL)

    _, help_text = await harness.command("help")
    assert json.loads(help_text)["text"].startswith("*Parley* 会在私信中回答；")

    _, tools = await harness.command("tools")
    blocks = json.loads(tools)["blocks"]
    assert blocks[0]["text"]["text"] == "这个频道的工具"
    assert blocks[-1]["elements"][0]["text"].startswith("所有人都可以查看，只有管理员可以更改。")

    mail = {"to": ["wang@example.com"], "subject": "周报", "body": "本周数据见附件。"}
    llm.script(tool_call_reply(("send_email", mail)), text_reply("好的，没有发送。"))
    await harness.event(dm_event("把周报发给王经理"))
    channel, ts, token, question = await confirmation_message(slack)
    assert buttons(question) == ["仅允许这一次", "始终允许", "拒绝"]
    assert question["blocks"][0]["text"]["text"].startswith("<@UALICE>: 发送电子邮件")
    await harness.press("parley_approval_denied", token, user=ALICE, channel=channel, message_ts=ts)
    await slack.wait_for("chat.stopStream")
    [answered] = [b for b in slack.bodies("chat.update") if b.get("ts") == ts]
    assert answered["text"].startswith("已拒绝，没有执行任何操作。")

    before = len(slack.bodies("chat.postMessage"))
    await harness.app.reminders.create(
        ReminderRequest(
            user=UserRef("slack", ALICE),
            chat=ChatRef("slack", DM_CHANNEL, ChatKind.DM),
            thread_key="",
            kind="message",
            text="给妈妈打电话",
            due_at=datetime.now(UTC) + timedelta(seconds=0.2),
            timezone="Asia/Shanghai",
        )
    )
    await slack.wait_for("chat.postMessage", before + 1)
    assert slack.bodies("chat.postMessage")[-1]["text"] == "⏰ 提醒：给妈妈打电话"

    # Two commands, a message and two presses: Slack was asked for the locale once.
    assert [b["user"] for b in locale_lookups(slack)] == [ALICE]


async def test_a_zh_cn_slack_user_is_refused_an_oversized_picture_in_chinese(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    slack.users[ALICE] = {"locale": "zh-CN"}
    harness = await make_slack(media={"vision": True, "max_image_bytes": 100_000})
    big = slack.add_file(JPEG, name="big.jpg", mimetype="image/jpeg", size=3 * 1024 * 1024)

    await harness.event(dm_event("", subtype="file_share", files=[big]))
    await slack.wait_for("chat.postMessage")

    assert [b["text"] for b in slack.bodies("chat.postMessage")] == [
        "这张图片太大了（3.0 MB，上限为 0.1 MB）。请发送小一些的图片。"
    ]
    assert slack.downloads == [] and llm.requests == []


async def test_parley_language_overrides_the_slack_locale(
    make_slack: HarnessFactory, slack: FakeSlackServer
) -> None:
    slack.users[ALICE] = {"locale": "zh-CN"}
    harness = await make_slack()

    _, chosen = await harness.command("language en")
    _, help_text = await harness.command("help")

    assert json.loads(chosen)["text"] == "From now on I write to you in English."
    assert json.loads(help_text)["text"].startswith("*Parley* answers in DMs")
