"""bot/turn/media.py, the image parts of both wires, and the transcriber against the scripted
transcription server (which refuses what OpenAI refuses) through the real openai client."""

from __future__ import annotations

import base64

import httpx2
import openai
import pytest

from bot.config import MediaSettings
from bot.domain import (
    Attachment,
    AttachmentKind,
    ChatMessage,
    ChatRef,
    ImagePart,
    IncomingMessage,
    Role,
    UserRef,
)
from bot.errors import TranscriptionFailed
from bot.i18n import _
from bot.llm.anthropic_history import to_anthropic_messages
from bot.llm.openai_wire import to_openai_messages
from bot.llm.transcription import OpenAITranscriber
from bot.turn.context import alternate
from bot.turn.media import (
    IMAGE_TOO_BIG,
    NOT_AUDIO,
    TOO_MANY_IMAGES,
    TRANSCRIPTION_FAILED,
    TRANSCRIPTION_OFF,
    MediaReader,
    audio_type,
    image_type,
)
from tests.fakes.anthropic_rules import validate_request
from tests.fakes.openai_rules import image_refusal
from tests.fakes.transcription_server import API_KEY, ScriptedTranscriptionServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0" + bytes(20)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(8)
OGG = b"OggS" + bytes(40)
M4A = b"\x00\x00\x00\x20ftypM4A " + bytes(20)
WAV = b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(8)


def incoming(text: str = "", *attachments: Attachment) -> IncomingMessage:
    return IncomingMessage(
        chat=ChatRef("test", "c1"), user=UserRef("test", "u1"), text=text, attachments=attachments
    )


def settings(**values: object) -> MediaSettings:
    return MediaSettings.model_validate(
        {MediaSettings.model_fields[k].validation_alias: v for k, v in values.items()}
    )


class Transcripts:
    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.heard: list[tuple[str, str]] = []

    async def transcribe(self, data: bytes, filename: str, media_type: str) -> str:
        self.heard.append((filename, media_type))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("data", "expected"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (b"GIF89a" + bytes(8), "image/gif"),
     (WEBP, "image/webp"), (b"<html>", None), (OGG, None), (b"", None)],
)  # fmt: skip
def test_image_types_come_from_the_bytes(data: bytes, expected: str | None) -> None:
    assert image_type(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [(OGG, "audio/ogg"), (M4A, "audio/mp4"), (WAV, "audio/wav"), (b"ID3\x04", "audio/mpeg"),
     (b"\xff\xfb\x90", "audio/mpeg"), (b"fLaC", "audio/flac"),
     (b"\x1a\x45\xdf\xa3", "audio/webm"), (PNG, None), (b"just text", None)],
)  # fmt: skip
def test_audio_types_come_from_the_bytes(data: bytes, expected: str | None) -> None:
    assert audio_type(data) == expected


def test_limits_are_checked_on_what_the_platform_declares() -> None:
    reader = MediaReader(settings(max_image_bytes=1000, max_images=2), Transcripts())
    image = Attachment(AttachmentKind.IMAGE, "image/png", size=500)

    assert reader.refusal([image, image]) is None
    assert reader.refusal([image] * 3) == _(TOO_MANY_IMAGES, limit=2)
    big = Attachment(AttachmentKind.IMAGE, "image/png", size=2 * 1024 * 1024)
    assert reader.refusal([big]) == _(IMAGE_TOO_BIG, size="2.0", limit="0.0")
    voice = Attachment(AttachmentKind.AUDIO, "audio/ogg", size=10)
    assert MediaReader(settings(), None).refusal([voice]) == _(TRANSCRIPTION_OFF)


async def test_the_bytes_are_checked_again_after_the_download() -> None:
    reader = MediaReader(settings(vision=True, max_image_bytes=30), None)
    declared_small = Attachment(AttachmentKind.IMAGE, "image/png", data=PNG + bytes(20), size=10)

    prepared = await reader.prepare(incoming("", declared_small), vision=True)

    assert prepared.refusal.startswith("This picture is too large")


async def test_pictures_become_image_parts_and_history_keeps_only_marks() -> None:
    reader = MediaReader(settings(), None)
    png = Attachment(AttachmentKind.IMAGE, "image/jpeg", data=PNG)  # declared wrong

    prepared = await reader.prepare(incoming("what is it?", png), vision=True)

    assert prepared.images == (ImagePart("image/png", PNG),)
    assert prepared.record == prepared.text == "[image]\nwhat is it?"
    assert not prepared.refusal and not prepared.notes


async def test_voice_notes_are_named_by_their_format_and_failures_are_notices() -> None:
    transcripts = Transcripts("hello there", TranscriptionFailed("503"))
    reader = MediaReader(settings(), transcripts)
    voice = Attachment(AttachmentKind.AUDIO, "audio/mpeg", data=OGG, name="x.mp3")

    heard = await reader.prepare(incoming("", voice), vision=False)
    failed = await reader.prepare(incoming("", voice), vision=False)
    not_audio = await reader.prepare(
        incoming("", Attachment(AttachmentKind.AUDIO, "audio/ogg", data=PNG)), vision=False
    )

    assert transcripts.heard == [("voice.ogg", "audio/ogg")] * 2
    assert (heard.text, heard.notes) == ("hello there", ("🎤 hello there",))
    assert failed.refusal == _(TRANSCRIPTION_FAILED)
    assert not_audio.refusal == _(NOT_AUDIO)


def test_image_parts_in_the_openai_shape_pass_the_scripted_servers_rules() -> None:
    turn = ChatMessage(Role.USER, "[image]\nhi", images=(ImagePart("image/png", PNG),))

    [converted] = to_openai_messages([turn])

    url = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    assert converted == {
        "role": "user",
        "content": [
            {"type": "text", "text": "[image]\nhi"},
            {"type": "image_url", "image_url": {"url": url}},
        ],
    }
    assert image_refusal({"messages": [converted]}) is None


def test_image_parts_in_the_anthropic_shape_pass_the_scripted_servers_rules() -> None:
    turn = ChatMessage(Role.USER, "[image]", images=(ImagePart("image/webp", WEBP),))

    _system, messages = to_anthropic_messages([turn])

    assert messages[0]["content"][0]["source"] == {
        "type": "base64",
        "media_type": "image/webp",
        "data": base64.b64encode(WEBP).decode(),
    }
    assert validate_request({"model": "c", "max_tokens": 10, "messages": messages}) is None


def test_merging_unanswered_user_messages_keeps_the_pictures() -> None:
    earlier = ChatMessage(Role.USER, "unanswered")
    turn = ChatMessage(Role.USER, "[image]", images=(ImagePart("image/png", PNG),))

    [merged] = alternate([earlier, turn])

    assert merged.images == turn.images and merged.content == "unanswered\n\n[image]"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("data:image/bmp;base64,Qk0=", "unsupported MIME type 'image/bmp'"),
        ("data:image/png;base64,!!!", "Invalid base64 image_url."),
        (f"data:image/png;base64,{base64.b64encode(b'<html>').decode()}", "unsupported image"),
        ("image.png", "without the 'data:' prefix"),
    ],
)
def test_the_scripted_openai_server_refuses_bad_image_parts(url: str, problem: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}

    refused = image_refusal({"messages": [{"role": "user", "content": [part]}]})

    assert refused is not None and problem in refused[1]


def test_the_scripted_anthropic_server_refuses_bad_image_blocks() -> None:
    def request(media_type: str, data: bytes) -> str | None:
        block = {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": media_type,
                "data": base64.b64encode(data).decode(),
            },
        }
        message = {"role": "user", "content": [block, {"type": "text", "text": "?"}]}
        return validate_request({"model": "c", "max_tokens": 10, "messages": [message]})

    assert "appears to be a image/png image" in str(request("image/jpeg", PNG))
    assert "Input should be 'image/jpeg'" in str(request("image/bmp", PNG))
    assert "exceeds 5 MB maximum" in str(request("image/png", PNG + bytes(4 * 1024 * 1024)))


async def test_the_transcriber_uploads_through_the_openai_client(
    transcription: ScriptedTranscriptionServer,
) -> None:
    transcription.script("guten Tag")
    transcriber = OpenAITranscriber(
        base_url=transcription.base_url, api_key=API_KEY, model="whisper-1", timeout=10
    )
    try:
        assert await transcriber.transcribe(OGG, "voice.ogg", "audio/ogg") == "guten Tag"
        with pytest.raises(TranscriptionFailed, match="400: Invalid file format"):
            await transcriber.transcribe(OGG, "voice.txt", "text/plain")
        with pytest.raises(TranscriptionFailed, match="400: Audio file might be corrupted"):
            await transcriber.transcribe(PNG, "voice.ogg", "audio/ogg")
    finally:
        await transcriber.aclose()
    assert [upload.filename for upload in transcription.requests] == ["voice.ogg"]


async def test_the_scripted_transcription_server_refuses_what_openai_refuses(
    transcription: ScriptedTranscriptionServer,
) -> None:
    client = openai.AsyncOpenAI(base_url=transcription.base_url, api_key=API_KEY, max_retries=0)
    wrong_key = openai.AsyncOpenAI(base_url=transcription.base_url, api_key="sk-no", max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError, match="model"):
            await client.audio.transcriptions.create(file=("a.ogg", OGG), model="")
        with pytest.raises(openai.AuthenticationError):
            await wrong_key.audio.transcriptions.create(file=("a.ogg", OGG), model="whisper-1")
        with pytest.raises(openai.APIStatusError) as too_big:
            await client.audio.transcriptions.create(
                file=("a.ogg", OGG + bytes(25 * 1024 * 1024)), model="whisper-1"
            )
        async with httpx2.AsyncClient() as raw:  # the SDK always sends a file
            no_file = await raw.post(
                f"{transcription.base_url}/audio/transcriptions",
                data={"model": "whisper-1"},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
    finally:
        await client.close()
        await wrong_key.close()
    assert too_big.value.status_code == 413
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    assert transcription.rejected == ["model", "key", "too large", "file"]
