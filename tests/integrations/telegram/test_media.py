"""Voice notes and pictures through the real adapter: getFile and the file download on
the fake Bot API, the real openai client on the scripted transcription server, image
parts checked by the scripted OpenAI and Anthropic servers."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.chat.notices import DOWNLOAD_FAILED
from bot.i18n import _
from bot.turn.media import IMAGE_TOO_BIG, NO_VISION, TRANSCRIPTION_OFF
from tests.fakes.anthropic_server import ScriptedAnthropicServer, anthropic_text_reply
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer, private_media, private_message
from tests.fakes.transcription_server import API_KEY, ScriptedTranscriptionServer
from tests.integrations.telegram.conftest import AppFactory

ALICE = 4101
# Enough of each format for every check that looks at the bytes (their magic numbers).
OGG = b"OggS\x00\x02" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)
SMALL_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
ANTHROPIC_KEY = "sk-ant-media-test-0123456789"


def sent_texts(telegram: FakeTelegramServer, chat_id: int = ALICE) -> list[str]:
    return [
        c.params["text"] for c in telegram.calls_of("sendMessage") if c.params["chat_id"] == chat_id
    ]


def hearing(transcription: ScriptedTranscriptionServer, **more: Any) -> dict[str, Any]:
    return {
        "transcription_base_url": transcription.base_url,
        "transcription_api_key": API_KEY,
        "transcription_model": "whisper-1",
        **more,
    }


def photo(telegram: FakeTelegramServer, *sizes: bytes) -> list[dict[str, Any]]:
    return [
        {**telegram.add_file(data, path=f"photos/file_{n}.jpg"), "width": 90 * n, "height": 90 * n}
        for n, data in enumerate(sizes, start=1)
    ]


async def test_a_voice_note_is_transcribed_shown_back_and_answered(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    transcription: ScriptedTranscriptionServer,
) -> None:
    transcription.script("What is the weather in Beijing tomorrow?")
    llm.script(text_reply("Sunny, 12 degrees."), text_reply("You asked about Beijing."))
    await telegram_app(media=hearing(transcription))
    voice = telegram.add_file(OGG, path="voice/file_7.oga")

    telegram.push(
        private_media(ALICE, {"voice": {**voice, "duration": 3, "mime_type": "audio/ogg"}})
    )
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    [upload] = transcription.requests
    assert (upload.model, upload.filename, upload.size) == ("whisper-1", "voice.ogg", len(OGG))
    assert upload.fields["response_format"] == "json"
    assert llm.requests[0]["messages"][-1] == {
        "role": "user",
        "content": "What is the weather in Beijing tomorrow?",
    }
    [answer] = sent_texts(telegram)
    assert answer.startswith("🎤 What is the weather in Beijing tomorrow?")
    assert answer.endswith("Sunny, 12 degrees.")
    assert [c.params["path"] for c in telegram.calls_of("download")] == ["voice/file_7.oga"]

    # The transcript is the turn's text in the history, too.
    telegram.push(private_message(ALICE, "What did I ask?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 2)
    history = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "user"]
    assert history == ["What is the weather in Beijing tomorrow?", "What did I ask?"]


async def test_a_photo_reaches_an_openai_compatible_model_as_an_image_part_once(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.script(text_reply("A cat on a sofa."), text_reply("It was a cat."))
    await telegram_app(media={"vision": True})
    sizes = photo(telegram, SMALL_JPEG, JPEG)

    telegram.push(private_media(ALICE, {"photo": sizes}, caption="What is this?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == ["A cat on a sofa."]
    assert not llm.rejected
    [user] = [m for m in llm.requests[0]["messages"] if m["role"] == "user"]
    encoded = base64.b64encode(JPEG).decode()  # the largest size within the limit
    assert user["content"] == [
        {"type": "text", "text": "[image]\nWhat is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{encoded}"}},
    ]

    # The next turn sends what the history keeps: the mark and the caption, no bytes.
    telegram.push(private_message(ALICE, "And what was it?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 2)
    users = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "user"]
    assert users == ["[image]\nWhat is this?", "And what was it?"]


async def test_a_photo_reaches_anthropic_as_an_image_block(
    claude: ScriptedAnthropicServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    claude.script(anthropic_text_reply("A red square."))
    await telegram_app(
        media={"vision": True},
        llm={
            "provider": "anthropic",
            "anthropic_api_key": ANTHROPIC_KEY,
            "anthropic_base_url": claude.base_url,
            "model": "claude-test",
        },
    )
    document = {**telegram.add_file(PNG, path="documents/file_3.png"), "mime_type": "image/png"}

    telegram.push(private_media(ALICE, {"document": {**document, "file_name": "square.png"}}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == ["A red square."]
    assert not claude.rejected
    [message] = claude.requests[0]["messages"]
    assert message["content"] == [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": "image/png",
                "data": base64.b64encode(PNG).decode(),
            },
        },
        {"type": "text", "text": "[image]"},
    ]


async def test_an_oversized_picture_is_refused_before_it_is_downloaded(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(media={"vision": True, "max_image_bytes": 100_000})
    big = telegram.add_file(PNG, path="documents/big.png", size=3 * 1024 * 1024)

    telegram.push(private_media(ALICE, {"document": {**big, "mime_type": "image/png"}}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == [_(IMAGE_TOO_BIG, size="3.0", limit="0.1")]
    assert not telegram.calls_of("getFile", "download")
    assert llm.requests == []


async def test_a_model_without_vision_gets_no_image_and_the_user_a_notice(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    llm.vision = False  # the scripted model refuses image parts as OpenAI does
    llm.script(text_reply("I cannot see it, but cats are nice."))
    await telegram_app()  # PARLEY_LLM_VISION is off by default
    sizes = photo(telegram, JPEG)

    telegram.push(private_media(ALICE, {"photo": sizes}, caption="Is my cat cute?"))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert not llm.rejected
    [user] = [m for m in llm.requests[0]["messages"] if m["role"] == "user"]
    assert user["content"] == "[image]\nIs my cat cute?"
    [answer] = sent_texts(telegram)
    assert answer.startswith(_(NO_VISION))
    assert answer.endswith("I cannot see it, but cats are nice.")

    # Without a caption there is nothing to answer: the notice alone, no model call.
    telegram.push(private_media(ALICE, {"photo": photo(telegram, JPEG)}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 2)
    assert sent_texts(telegram)[1] == _(NO_VISION)
    assert len(llm.requests) == 1


async def test_a_voice_note_without_transcription_set_up_gets_a_notice(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app()
    voice = telegram.add_file(OGG)

    telegram.push(private_media(ALICE, {"voice": {**voice, "duration": 2}}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == [_(TRANSCRIPTION_OFF)]
    assert not telegram.calls_of("getFile") and llm.requests == []


async def test_a_picture_whose_bytes_are_no_image_is_refused_whatever_its_name_says(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(media={"vision": True})
    html = telegram.add_file(b"<html><body>sign in</body></html>", path="documents/x.png")

    telegram.push(private_media(ALICE, {"document": {**html, "mime_type": "image/png"}}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert "could not read this file as a picture" in sent_texts(telegram)[0]
    assert llm.requests == []


async def test_file_urls_carry_the_token_and_never_reach_the_logs(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    llm.script(text_reply("A cat."))
    await telegram_app(media={"vision": True})

    telegram.push(private_media(ALICE, {"photo": photo(telegram, JPEG)}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    ours = [r for r in caplog.records if r.name.startswith(("bot", "integrations"))]
    assert ours and not any(TOKEN in r.getMessage() for r in ours)
    assert not any(base64.b64encode(JPEG).decode()[:40] in r.getMessage() for r in caplog.records)


async def test_a_download_with_another_token_is_a_404(telegram: FakeTelegramServer) -> None:
    import httpx2

    telegram.add_file(JPEG, path="photos/file_1.jpg")
    root = telegram.base_url.removesuffix("/bot")
    async with httpx2.AsyncClient() as client:
        good = await client.get(f"{root}/file/bot{TOKEN}/photos/file_1.jpg")
        wrong = await client.get(f"{root}/file/bot1:other/photos/file_1.jpg")

    assert (good.status_code, good.content) == (200, JPEG)
    assert wrong.status_code == 404


async def test_a_download_bigger_than_getfile_said_is_cut_at_the_limit(
    llm: ScriptedOpenAIServer, telegram: FakeTelegramServer, telegram_app: AppFactory
) -> None:
    await telegram_app(media={"vision": True, "max_image_bytes": 1_500_000})
    # getFile says 1 kB; the file URL serves 8 MB.
    lying = telegram.add_file(JPEG + bytes(8_000_000), path="photos/big.jpg", size=1000,
                              get_file_size=1000)  # fmt: skip

    telegram.push(private_media(ALICE, {"photo": [{**lying, "width": 90, "height": 90}]}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    # The size the user hears is what was read: the limit and one byte, not 8 MB.
    assert sent_texts(telegram) == [_(IMAGE_TOO_BIG, size="1.4", limit="1.4")]
    assert [c.params["path"] for c in telegram.calls_of("download")] == ["photos/big.jpg"]
    assert llm.requests == []


async def test_a_getfile_path_outside_the_file_url_is_not_read(
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    telegram_app: AppFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A path on this machine: python-telegram-bot alone would read it from the disk.
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(JPEG)
    llm.script(text_reply("I see a file from your disk."))
    await telegram_app(media={"vision": True})
    local = telegram.add_file(JPEG, path=str(secret))

    telegram.push(private_media(ALICE, {"photo": [{**local, "width": 90, "height": 90}]}))
    await telegram.wait_for(lambda t: len(sent_texts(t)) == 1)

    assert sent_texts(telegram) == [_(DOWNLOAD_FAILED)]
    assert llm.requests == [] and not telegram.calls_of("download")
    assert any("outside the Bot API file URL" in r.getMessage() for r in caplog.records)
