"""Voice clips and pictures shared in Slack: signed `file_share` events through bolt,
files fetched from the fake's private URLs with the bot token (files.info for Slack
Connect files), the real openai client on the scripted transcription server."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bot.chat.notices import DOWNLOAD_FAILED
from bot.i18n import _
from bot.turn.media import AUDIO_TOO_LONG
from integrations.slack.files import NOT_ON_SLACK, SlackFileHosts
from tests.fakes.file_host import ElsewhereServer
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.transcription_server import API_KEY, ScriptedTranscriptionServer
from tests.integrations.slack.harness import HarnessFactory, dm_event, streamed_text

WEBM = b"\x1a\x45\xdf\xa3" + bytes(300)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)


def hearing(transcription: ScriptedTranscriptionServer) -> dict[str, Any]:
    return {
        "transcription_base_url": transcription.base_url,
        "transcription_api_key": API_KEY,
        "transcription_model": "gpt-4o-mini-transcribe",
    }


def shared(text: str, *files: dict[str, Any]) -> dict[str, Any]:
    return dm_event(text, subtype="file_share", files=list(files))


def posted(slack: FakeSlackServer) -> list[str]:
    return [body.get("text", "") for body in slack.bodies("chat.postMessage")]


async def test_a_voice_clip_becomes_a_turn(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    transcription: ScriptedTranscriptionServer,
) -> None:
    transcription.script("Remind me what time it is in Tokyo")
    llm.script(text_reply("It is evening in Tokyo."))
    harness = await make_slack(media=hearing(transcription))
    clip = slack.add_file(
        WEBM, name="audio_message.webm", mimetype="audio/webm", subtype="slack_audio",
        duration_ms=4200,
    )  # fmt: skip

    status, _body = await harness.event(shared("", clip))
    assert status == 200
    await slack.wait_for("chat.stopStream")

    [upload] = transcription.requests
    assert (upload.model, upload.filename) == ("gpt-4o-mini-transcribe", "voice.webm")
    assert [d["token"] for d in slack.downloads] == ["xoxb-test-token"]
    assert llm.requests[0]["messages"][-1]["content"] == "Remind me what time it is in Tokyo"
    text = streamed_text(slack)
    assert text.startswith("🎤 Remind me what time it is in Tokyo")
    assert text.endswith("It is evening in Tokyo.")


async def test_a_slack_connect_picture_is_described_by_files_info_then_shown(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    llm.script(text_reply("A diagram."))
    harness = await make_slack(media={"vision": True})
    picture = slack.add_file(JPEG, name="diagram.jpg", mimetype="image/jpeg", check_file_info=True)

    await harness.event(shared("what is this?", picture))
    await slack.wait_for("chat.stopStream")
    assert "diagram" in streamed_text(slack)

    assert [body["file"] for body in slack.bodies("files.info")] == [picture["id"]]
    [user] = [m for m in llm.requests[0]["messages"] if m["role"] == "user"]
    encoded = base64.b64encode(JPEG).decode()
    assert user["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/jpeg;base64,{encoded}"},
    }


async def test_a_file_slack_will_not_give_is_a_notice_not_a_turn(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(media={"vision": True})
    picture = slack.add_file(JPEG, name="photo.jpg", mimetype="image/jpeg")
    slack.rejected_tokens.add("xoxb-test-token-for-files")  # a token without files:read
    harness.platform.settings = harness.platform.settings.model_copy(
        update={"bot_token": type(harness.platform.settings.bot_token)("xoxb-test-token-for-files")}
    )

    await harness.event(shared("look", picture))
    await slack.wait_for("chat.postMessage")
    assert posted(slack) == [_(DOWNLOAD_FAILED)]

    assert llm.requests == []
    assert slack.downloads and slack.downloads[0]["token"] == "xoxb-test-token-for-files"


async def test_a_too_long_voice_clip_is_refused_before_it_is_downloaded(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    transcription: ScriptedTranscriptionServer,
) -> None:
    harness = await make_slack(media={**hearing(transcription), "max_audio_seconds": 60})
    clip = slack.add_file(
        WEBM, name="long.webm", mimetype="audio/webm", subtype="slack_audio", duration_ms=600_000
    )

    await harness.event(shared("", clip))
    await slack.wait_for("chat.postMessage")

    assert posted(slack) == [_(AUDIO_TOO_LONG, seconds=600, limit=60)]
    assert slack.downloads == [] and transcription.requests == [] and llm.requests == []


async def test_a_picture_is_read_whole_and_one_sent_bigger_than_declared_is_refused(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    llm.script(text_reply("A big picture."))
    harness = await make_slack(media={"vision": True, "max_image_bytes": 1_500_000})
    large = JPEG + bytes(1_000_000)  # many reads of the body
    lying = slack.add_file(JPEG + bytes(2_000_000), name="b.jpg", mimetype="image/jpeg", size=900)

    await harness.event(shared("", slack.add_file(large, name="a.jpg", mimetype="image/jpeg")))
    await slack.wait_for("chat.stopStream")
    await harness.event(shared("", lying))
    await slack.wait_for("chat.postMessage")

    [user] = [m for m in llm.requests[0]["messages"] if m["role"] == "user"]
    assert user["content"][1]["image_url"]["url"].endswith(base64.b64encode(large).decode())
    assert posted(slack)[0].startswith("This picture is too large for me (1.4 MB")
    assert len(llm.requests) == 1


async def test_a_file_on_another_host_is_refused_and_gets_no_token(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    elsewhere: ElsewhereServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = await make_slack(media={"vision": True})
    remote = slack.add_file(
        JPEG, name="photo.jpg", mimetype="image/jpeg", url=elsewhere.url("/steal/photo.jpg")
    )

    await harness.event(shared("look", remote))
    await slack.wait_for("chat.postMessage")

    assert posted(slack) == [_(NOT_ON_SLACK)]
    assert elsewhere.requests == [] and llm.requests == []
    [line] = [r.getMessage() for r in caplog.records if "Slack's file hosts" in r.getMessage()]
    assert "'127.0.0.1'" in line and "steal" not in line  # the host, never the whole URL


async def test_a_redirect_off_slack_is_not_followed(
    make_slack: HarnessFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    elsewhere: ElsewhereServer,
) -> None:
    harness = await make_slack(media={"vision": True})
    hop = slack.add_file(
        JPEG, name="photo.jpg", mimetype="image/jpeg", redirect_to=elsewhere.url("/cdn/photo.jpg")
    )

    await harness.event(shared("look", hop))
    await slack.wait_for("chat.postMessage")

    assert [d["token"] for d in slack.downloads] == ["xoxb-test-token"]
    assert elsewhere.requests == []  # neither the token nor the request left Slack
    assert posted(slack) == [_(NOT_ON_SLACK)] and llm.requests == []


def test_only_slack_file_hosts_over_https_and_the_api_origin_may_carry_the_token() -> None:
    hosts = SlackFileHosts("http://127.0.0.1:8123/api/")
    allowed = [
        "https://files.slack.com/files-pri/T1-F1/download/a.png",
        "https://files.slack-gov.com/files-pri/T1-F1/a.png",
        "https://slack-files.com/files-pri/T1-F1/a.png",
        "https://a.slack-files.com/T1-F1/a.png",
        "http://127.0.0.1:8123/files-pri/T1-F1/a.png",
    ]
    refused = [
        "http://files.slack.com/files-pri/T1-F1/a.png",
        "https://files.slack.com.evil.example/a.png",
        "https://evil.example/files.slack.com/a.png",
        "https://files.slack.com:8443/a.png",
        "https://user@files.slack.com/a.png",
        "https://evilslack-files.com/a.png",
        "http://127.0.0.1:8124/files-pri/a.png",
        "file:///etc/passwd",
        "",
    ]
    assert [url for url in allowed if not hosts.allows(url)] == []
    assert [url for url in refused if hosts.allows(url)] == []
