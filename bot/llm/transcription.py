"""`OpenAITranscriber`: speech to text through an OpenAI-compatible
`/audio/transcriptions` endpoint (OpenAI's whisper-1 and gpt-4o-transcribe, Groq,
a local whisper server, DashScope's compatible mode), with its own base URL, key and
model (PARLEY_TRANSCRIPTION_*), so voice notes may go elsewhere than the chat model.

The request is the SDK's multipart upload: `file` (named with the extension of the
format the bytes are in: the endpoint goes by the name), `model`, and
`response_format=json`. Every failure becomes `TranscriptionFailed` with the status and
the vendor's message, never the audio or the key.
"""

from __future__ import annotations

import httpx2
import openai

from bot.config import MediaSettings
from bot.errors import TranscriptionFailed


class OpenAITranscriber:
    """A `bot.turn.media.Transcriber` on the openai SDK's audio.transcriptions client."""

    def __init__(self, *, base_url: str, api_key: str | None, model: str, timeout: float) -> None:
        self.model = model
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # Local whisper servers need no key, but the SDK refuses an empty one.
            api_key=api_key or "EMPTY",
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)),
            max_retries=1,
        )

    @classmethod
    def from_settings(cls, settings: MediaSettings) -> OpenAITranscriber:
        key = settings.transcription_api_key
        return cls(
            base_url=settings.transcription_base_url,
            api_key=key.get_secret_value() if key is not None else None,
            model=settings.transcription_model,
            timeout=settings.transcription_timeout_seconds,
        )

    async def transcribe(self, data: bytes, filename: str, media_type: str) -> str:
        try:
            result = await self._client.audio.transcriptions.create(
                file=(filename, data, media_type), model=self.model, response_format="json"
            )
        except openai.APIStatusError as exc:
            raise TranscriptionFailed(
                f"the transcription endpoint answered {exc.status_code}: {_message(exc)}"
            ) from None
        except openai.APIError as exc:
            raise TranscriptionFailed(
                f"the transcription endpoint failed: {type(exc).__name__}"
            ) from None
        text = getattr(result, "text", result)
        if not isinstance(text, str):
            raise TranscriptionFailed("the transcription endpoint answered without text")
        return text

    async def aclose(self) -> None:
        await self._client.close()


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
    return exc.message[:300]
