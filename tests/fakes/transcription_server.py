"""A scripted OpenAI-compatible `/v1/audio/transcriptions` server for tests.

`ScriptedTranscriptionServer` is a real HTTP server on 127.0.0.1 (an ephemeral port),
uvicorn in a thread, so the real `openai` client uploads to it over real sockets. Each
request consumes one scripted transcript (`script`), and `requests` records what came:
model, file name, declared type, size and the other form fields.

It refuses what OpenAI's endpoint refuses (platform.openai.com/docs/api-reference/audio,
help.openai.com "Audio API FAQ", and the error texts its users quote): a request without
the bearer key (401), without `file` or `model` (400), a body over 25 MB (413), a file
whose name's extension is not one of the supported formats, or whose bytes are not in
that format (400), and an unknown `response_format`.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.http import FakeServer, ThreadedServer

API_KEY = "sk-transcribe-test"
MAX_BYTES = 25 * 1024 * 1024
FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
# What the bytes of each format start with (ISO BMFF files carry "ftyp" at offset 4).
_MAGIC = {
    "flac": (b"fLaC",),
    "ogg": (b"OggS",),
    "oga": (b"OggS",),
    "webm": (b"\x1a\x45\xdf\xa3",),
    "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "mpga": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "mpeg": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "wav": (b"RIFF",),
}


@dataclass(frozen=True, slots=True)
class Upload:
    """One transcription request as it arrived."""

    model: str
    filename: str
    content_type: str
    size: int
    fields: dict[str, str]


def _error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    return JSONResponse(body, status_code=status)


def _in_format(extension: str, data: bytes) -> bool:
    if extension in ("m4a", "mp4"):
        return data[4:8] == b"ftyp"
    return data.startswith(_MAGIC.get(extension, ()))


class ScriptedTranscriptionServer(FakeServer):
    """Answers each transcription with the next scripted text (`script`)."""

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[Upload] = []
        self.rejected: list[str] = []
        self._queue: deque[str] = deque()
        self._ids = itertools.count(1)
        app = Starlette(
            routes=[Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])]
        )
        super().__init__(ThreadedServer(app, name="scripted-transcription"))

    def started(self, root: str) -> None:
        self.base_url = f"{root}/v1"

    def script(self, *transcripts: str) -> None:
        self._queue.extend(transcripts)

    def reset(self) -> None:
        self._queue.clear()
        self.requests.clear()
        self.rejected.clear()

    def _refuse(self, response: Response, why: str) -> Response:
        self.rejected.append(why)
        return response

    async def _transcribe(self, request: Request) -> Response:
        if request.headers.get("authorization", "") != f"Bearer {API_KEY}":
            return self._refuse(
                _error(401, "Incorrect API key provided.", code="invalid_api_key"), "key"
            )
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_BYTES:
            return self._refuse(
                _error(
                    413,
                    f"Maximum content size limit ({MAX_BYTES}) exceeded ({length} bytes read)",
                ),
                "too large",
            )
        async with request.form(max_part_size=MAX_BYTES + 1) as form:
            return await self._answer(form)

    async def _answer(self, form: FormData) -> Response:
        upload = form.get("file")
        model = form.get("model")
        if not isinstance(upload, UploadFile):
            return self._refuse(_error(400, "Missing required parameter: 'file'.", "file"), "file")
        if not isinstance(model, str) or not model:
            return self._refuse(_error(400, "you must provide a model parameter", "model"), "model")
        data = await upload.read()
        extension = (upload.filename or "").rpartition(".")[2].lower()
        if extension not in FORMATS:
            return self._refuse(
                _error(
                    400,
                    f"Invalid file format. Supported formats: {list(FORMATS)}",
                    "file",
                    "invalid_value",
                ),
                "format",
            )
        if not _in_format(extension, data):
            return self._refuse(
                _error(
                    400,
                    "Audio file might be corrupted or unsupported",
                    "file",
                    "invalid_value",
                ),
                "corrupted",
            )
        response_format = str(form.get("response_format") or "json")
        if response_format not in RESPONSE_FORMATS:
            return self._refuse(
                _error(400, f"Invalid value: '{response_format}'.", "response_format"),
                "response_format",
            )
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.requests.append(
            Upload(model, upload.filename or "", upload.content_type or "", len(data), fields)
        )
        text = self._queue.popleft() if self._queue else ""
        if response_format == "text":
            return PlainTextResponse(text)
        body: dict[str, Any] = {"text": text}
        if response_format == "verbose_json":
            body.update(task="transcribe", language="english", duration=1.0, segments=[])
        return Response(json.dumps(body), media_type="application/json")
