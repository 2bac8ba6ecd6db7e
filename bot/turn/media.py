"""Voice notes and pictures that come with a message, made ready for a turn.

An adapter reads what the platform declares about each file (kind, size, duration) and
asks `MediaReader.refusal` before it downloads anything; after the download the engine
asks `prepare`, which checks the bytes themselves (their magic numbers, never the name or
the declared type), transcribes voice notes into the turn's text, and turns pictures into
`ImagePart`s when the channel's model can see, or into a notice when it cannot.

Nothing here is stored or logged: the history keeps the transcript and, for a picture,
the text "[image]" with its caption, so a later turn sends words, not bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.config import MediaSettings
from bot.domain import Attachment, AttachmentKind, ImagePart, IncomingMessage
from bot.errors import TranscriptionFailed
from bot.i18n import N_, _

log = logging.getLogger(__name__)

IMAGE_MARK = "[image]"
TRANSCRIPT_MARK = "🎤"
# The transcript is shown back briefly: the start of it is enough to see it was heard.
TRANSCRIPT_SHOWN_CHARS = 200

TRANSCRIPTION_OFF = N_(
    "I can't listen to voice messages here: transcription is not set up. "
    "Please write your message instead."
)
AUDIO_TOO_BIG = N_(
    "This voice message is too large for me ({size} MB; the limit is {limit} MB). "
    "Please send a shorter one or write it instead."
)
AUDIO_TOO_LONG = N_(
    "This voice message is too long for me ({seconds} s; the limit is {limit} s). "
    "Please send a shorter one or write it instead."
)
NOT_AUDIO = N_(
    "I could not read this file as a voice message (I take OGG, MP3, M4A, WAV, FLAC "
    "and WebM audio)."
)
TRANSCRIPTION_FAILED = N_(
    "I could not transcribe this voice message. Please try again, or write it instead."
)
NOTHING_HEARD = N_("I heard nothing I could transcribe in this voice message.")
IMAGE_TOO_BIG = N_(
    "This picture is too large for me ({size} MB; the limit is {limit} MB). "
    "Please send a smaller one."
)
TOO_MANY_IMAGES = N_("That is too many pictures at once: I take at most {limit} per message.")
NOT_AN_IMAGE = N_("I could not read this file as a picture (I take JPEG, PNG, GIF and WebP).")
NO_VISION = N_(
    "The model in this chat cannot see pictures, so I did not pass yours on. "
    "Describe it in words and I will help."
)

# Magic numbers of the formats each vendor takes (OpenAI and Anthropic both: JPEG, PNG,
# GIF, WebP for images; OpenAI's transcriptions: flac, mp3, mp4/m4a, ogg, wav, webm).
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_AUDIO_SIGNATURES = (
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
    (b"\x1a\x45\xdf\xa3", "audio/webm"),
)
# Transcription endpoints tell formats by the file name's extension, and platforms'
# names are anything (Slack's voice clips have none), so the name is made from the bytes.
AUDIO_EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/mpeg": "mp3",
    "audio/webm": "webm",
    "audio/wav": "wav",
    "audio/mp4": "m4a",
}


def image_type(data: bytes) -> str | None:
    """The image format the bytes are in (a media type), or None if not one we take."""
    for magic, media_type in _IMAGE_SIGNATURES:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def audio_type(data: bytes) -> str | None:
    """The audio format the bytes are in (a media type), or None if not one we take."""
    for magic, media_type in _AUDIO_SIGNATURES:
        if data.startswith(magic):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "audio/mp4"
    # An MPEG audio frame without an ID3 tag: eleven set sync bits.
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    return None


class Transcriber(Protocol):
    """Turns speech into text (bot.llm.transcription.OpenAITranscriber)."""

    async def transcribe(self, data: bytes, filename: str, media_type: str) -> str:
        """The transcript; raises TranscriptionFailed with the reason."""
        ...


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    """A message with its files, as the engine runs it.

    `text` is what the model reads as the user's words and `record` what the history
    keeps (the same, with "[image]" marks where pictures were); `notes` are shown to the
    user before the answer; `refusal`, when set, is all there is to say: no turn runs."""

    text: str
    record: str
    images: tuple[ImagePart, ...] = ()
    notes: tuple[str, ...] = ()
    refusal: str = ""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


class MediaReader:
    """Checks files against the limits, reads voice notes and pictures for a turn."""

    def __init__(self, settings: MediaSettings, transcriber: Transcriber | None) -> None:
        self.settings = settings
        self.transcriber = transcriber

    def vision(self, channel_vision: bool | None) -> bool:
        """Whether pictures go to the model: the channel's own choice, else the global."""
        return self.settings.vision if channel_vision is None else channel_vision

    def max_bytes(self, kind: AttachmentKind) -> int:
        """The most an adapter may download for a file of this kind."""
        if kind is AttachmentKind.AUDIO:
            return self.settings.max_audio_bytes
        return self.settings.max_image_bytes

    def refusal(self, attachments: Sequence[Attachment]) -> str | None:
        """Why these files cannot be taken (in the reader's language), judged on what the
        platform declares, before anything is downloaded; None if they may be."""
        images = [a for a in attachments if a.kind is AttachmentKind.IMAGE]
        if len(images) > self.settings.max_images:
            return _(TOO_MANY_IMAGES, limit=self.settings.max_images)
        for attachment in attachments:
            problem = self._too_big(attachment, attachment.size)
            if problem:
                return problem
            if attachment.kind is AttachmentKind.AUDIO:
                if self.transcriber is None:
                    return _(TRANSCRIPTION_OFF)
                limit = self.settings.max_audio_seconds
                if attachment.duration_seconds > limit:
                    return _(
                        AUDIO_TOO_LONG, seconds=round(attachment.duration_seconds), limit=limit
                    )
        return None

    def _too_big(self, attachment: Attachment, size: int) -> str | None:
        limit = self.max_bytes(attachment.kind)
        if size <= limit:
            return None
        message = AUDIO_TOO_BIG if attachment.kind is AttachmentKind.AUDIO else IMAGE_TOO_BIG
        return _(message, size=_megabytes(size), limit=_megabytes(limit))

    async def prepare(self, message: IncomingMessage, *, vision: bool) -> PreparedTurn:
        """The turn this message and its downloaded files make (see `PreparedTurn`)."""
        caption = message.text
        if not message.attachments:
            return PreparedTurn(caption, caption)
        refusal = self.refusal(message.attachments)
        if refusal:
            return PreparedTurn(caption, caption, refusal=refusal)
        heard: list[str] = []
        images: list[ImagePart] = []
        for attachment in message.attachments:
            problem = self._too_big(attachment, len(attachment.data))
            if problem:  # the platform declared less than it sent
                return PreparedTurn(caption, caption, refusal=problem)
            if attachment.kind is AttachmentKind.AUDIO:
                transcript, problem = await self._transcribe(attachment)
                if problem:
                    return PreparedTurn(caption, caption, refusal=problem)
                heard.append(transcript)
            else:
                media_type = image_type(attachment.data)
                if media_type is None:
                    log.info("a picture whose bytes are no image we take was refused")
                    return PreparedTurn(caption, caption, refusal=_(NOT_AN_IMAGE))
                images.append(ImagePart(media_type, attachment.data))
        spoken = "\n\n".join(heard)
        text = "\n\n".join(part for part in (caption, spoken) if part)
        notes = [f"{TRANSCRIPT_MARK} {_shorten(t)}" for t in heard]
        marks = " ".join([IMAGE_MARK] * len(images))
        record = "\n".join(part for part in (marks, text) if part)
        if images and not vision:
            log.info("%d picture(s) not passed on: the channel's model has no vision", len(images))
            if not text:
                return PreparedTurn(text, record, refusal=_(NO_VISION))
            return PreparedTurn(record, record, notes=(*notes, _(NO_VISION)))
        # The model reads the same marks the history keeps, next to the pictures.
        return PreparedTurn(record if images else text, record, tuple(images), tuple(notes))

    async def _transcribe(self, attachment: Attachment) -> tuple[str, str]:
        """(transcript, "") or ("", what to tell the user)."""
        media_type = audio_type(attachment.data)
        if media_type is None:
            log.info("a voice note whose bytes are no audio format we take was refused")
            return "", _(NOT_AUDIO)
        if self.transcriber is None:
            return "", _(TRANSCRIPTION_OFF)
        filename = f"voice.{AUDIO_EXTENSIONS[media_type]}"
        try:
            transcript = await self.transcriber.transcribe(attachment.data, filename, media_type)
        except TranscriptionFailed as exc:
            log.warning("a voice note could not be transcribed: %s", exc)
            return "", _(TRANSCRIPTION_FAILED)
        transcript = transcript.strip()
        if not transcript:
            return "", _(NOTHING_HEARD)
        log.info(
            "transcribed a voice note (%d bytes, %d chars)", len(attachment.data), len(transcript)
        )
        return transcript, ""


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= TRANSCRIPT_SHOWN_CHARS:
        return flat
    return flat[: TRANSCRIPT_SHOWN_CHARS - 1].rstrip() + "…"
