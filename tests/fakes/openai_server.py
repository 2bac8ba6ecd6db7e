"""A scripted OpenAI-compatible Chat Completions server for tests and benchmarks.

`ScriptedOpenAIServer` is a real HTTP server on 127.0.0.1 (an ephemeral port), served by
uvicorn in a background thread with its own event loop, so the real `openai` client can
talk to it over real sockets. Tests queue `ScriptedReply` objects built by the helpers of
tests/fakes/openai_replies.py (re-exported here); each request to `/v1/chat/completions`
consumes one.

`refuse_as(vendor)` makes the server refuse what that vendor refuses
(tests/fakes/openai_rules.py), with that vendor's error body.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tests.fakes.http import FakeServer, ThreadedServer
from tests.fakes.openai_replies import (
    CALL,
    MODEL_BYTES,
    SIGNATURE_BYTES,
    VENDORS,
    ScriptedReply,
    cut_reply,
    deltas_reply,
    ernie_error_reply,
    error_reply,
    fill_call_id,
    gemini_error_reply,
    markup_tool_reply,
    openrouter_error_reply,
    refusal_reply,
    stream_error_reply,
    text_reply,
    tool_call_reply,
    vendor_error_reply,
)
from tests.fakes.openai_rules import image_refusal, refusal

__all__ = [
    "VENDORS",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "cut_reply",
    "deltas_reply",
    "ernie_error_reply",
    "error_reply",
    "gemini_error_reply",
    "markup_tool_reply",
    "openrouter_error_reply",
    "refusal_reply",
    "stream_error_reply",
    "text_reply",
    "tool_call_reply",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_NO_REPLY = error_reply(500, message="no scripted reply")
_NOT_FOUND = error_reply(404, message="unknown path")


class ScriptedOpenAIServer(FakeServer):
    """A real OpenAI-compatible HTTP server answering from a queue of scripted replies.

    Use `start()`/`stop()` or `with ScriptedOpenAIServer() as server:`. Point a client at
    `base_url`. `requests` and `request_headers` record what each chat completion request
    carried (headers with lower-case names), in order; `request_clients` the client's
    (host, port), so a test can tell whether connections were reused.

    `refuse_as(vendor)` makes the server answer like that vendor to a request it would
    refuse (tests/fakes/openai_rules.py): a 400 with the vendor's own text, recorded in
    `rejected`, and no scripted reply consumed. `reset()` turns it off again.
    """

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_clients: list[tuple[str, int]] = []
        self.rejected: list[str] = []
        self.vendor: str | None = None
        # False: the model cannot see, and image parts are refused as OpenAI refuses them.
        self.vision = True
        self.issued_signatures: set[str] = set()
        self._signatures = itertools.count(1)
        self._queue: deque[ScriptedReply] = deque()
        self._default: ScriptedReply | None = None
        self._responder: Callable[[dict[str, Any]], ScriptedReply] | None = None
        self._request_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._released = threading.Event()
        self._released.set()
        self.held = 0  # streams open and waiting for `release()`
        self._gates: set[threading.Event] = set()  # replies' gates a stream waited on
        super().__init__(ThreadedServer(self._app, name="scripted-openai"))

    def started(self, root: str) -> None:
        self.base_url = f"{root}/v1"

    def script(self, *replies: ScriptedReply) -> None:
        """Queue replies; each request consumes one, in order."""
        self._queue.extend(replies)

    def refuse_as(self, vendor: str | None) -> None:
        """Refuse what `vendor` refuses (None: accept any well-formed request)."""
        self.vendor = vendor

    def set_default(self, reply: ScriptedReply | None) -> None:
        """Answer with `reply` whenever the queue is empty (None: a 500 error)."""
        self._default = reply

    def hold(self) -> None:
        """From now on, hold each streamed reply open half-way (its first half sent) until
        `release()`: a model in the middle of an answer, for as long as a test needs
        (e.g. to kill the process that is reading it). `held` counts the streams waiting."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def set_responder(self, responder: Callable[[dict[str, Any]], ScriptedReply] | None) -> None:
        """Answer from `responder(request body)` whenever the queue is empty (before the
        default): a benchmark's model that calls a tool for some questions only."""
        self._responder = responder

    def wake(self) -> None:
        """Let every waiting stream go: none may hold the server's threads past a test."""
        self._released.set()
        for gate in self._gates:
            gate.set()
        self._gates.clear()

    def reset(self) -> None:
        """Forget queued replies, the default, the responder and the recorded requests."""
        self.wake()
        self._queue.clear()
        self._default = None
        self._responder = None
        self.requests.clear()
        self.request_headers.clear()
        self.request_clients.clear()
        self.rejected.clear()
        self.vendor = None
        self.vision = True
        self.issued_signatures.clear()

    def _next_reply(self, payload: dict[str, Any]) -> ScriptedReply:
        try:
            return self._queue.popleft()
        except IndexError:
            if self._responder is not None:
                return self._responder(payload)
            return self._default or _NO_REPLY

    async def _app(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request_id = b"req_%d" % next(self._request_ids)
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/v1/chat/completions":
            await self._send_whole(send, _NOT_FOUND, request_id, b"")
            return
        try:
            payload = json.loads(b"".join(chunks))
        except ValueError:
            await self._send_whole(
                send, error_reply(400, message="body is not JSON"), request_id, b""
            )
            return
        self.requests.append(payload)
        self.request_headers.append(
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        )
        client = scope.get("client") or ("", 0)
        self.request_clients.append((str(client[0]), int(client[1])))
        refused = image_refusal(payload, vision=self.vision) if isinstance(payload, dict) else None
        if refused is None and self.vendor and isinstance(payload, dict):
            refused = refusal(payload, self.vendor, self.issued_signatures)
        if refused is not None:
            status, text, code = refused
            self.rejected.append(text)
            reply = vendor_error_reply(self.vendor or "", status, text, code)
            await self._send_whole(send, reply, request_id, b"")
            return
        reply = self._next_reply(payload)
        model = json.dumps(str(payload.get("model", "")))[1:-1].encode()
        if not payload.get("stream") or reply.events is None:
            if reply.delay:
                await asyncio.sleep(reply.delay)
            await self._send_whole(send, reply, request_id, model)
            return
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        events = reply.events_with_usage if include_usage else reply.events
        assert events is not None
        ids = [
            (CALL.format(i).encode(), fill_call_id(reply.id_style, next(self._call_ids)))
            for i in range(reply.call_count)
        ]
        # No pause between chunks, so one write carries them all: the client still parses
        # one SSE event per chunk, and the server stays fast enough for benchmarks.
        body = self._sign(b"".join(events).replace(MODEL_BYTES, model))
        for placeholder, call_id in ids:
            body = body.replace(placeholder, call_id)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id),
                    *reply.headers,
                ],
            }
        )
        if reply.delay:  # a slow model: the stream is open, the first chunk is late
            await asyncio.sleep(reply.delay)
        if reply.gate is not None:
            self._gates.add(reply.gate)
            await asyncio.get_running_loop().run_in_executor(None, reply.gate.wait)
        if not self._released.is_set():
            frames = body.split(b"\n\n")[:-1]
            half = max(1, len(frames) // 2)
            for frame in frames[:half]:
                await send(
                    {"type": "http.response.body", "body": frame + b"\n\n", "more_body": True}
                )
            self.held += 1
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._released.wait)
            finally:
                self.held -= 1
            rest = b"".join(frame + b"\n\n" for frame in frames[half:])
            await send({"type": "http.response.body", "body": rest, "more_body": False})
            return
        if reply.chunk_delay:
            frames = body.split(b"\n\n")[:-1]
            for frame in frames:
                await send(
                    {"type": "http.response.body", "body": frame + b"\n\n", "more_body": True}
                )
                await asyncio.sleep(reply.chunk_delay)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _sign(self, body: bytes) -> bytes:
        """Give the reply's thought signature (if any) a fresh value, and remember it."""
        if SIGNATURE_BYTES not in body:
            return body
        signature = f"sig-{next(self._signatures)}-{secrets.token_hex(4)}"
        self.issued_signatures.add(signature)
        return body.replace(SIGNATURE_BYTES, signature.encode())

    async def _send_whole(
        self,
        send: Callable[[Message], Awaitable[None]],
        reply: ScriptedReply,
        request_id: bytes,
        model: bytes,
    ) -> None:
        body = self._sign(reply.body.replace(MODEL_BYTES, model))
        for i in range(reply.call_count):
            body = body.replace(
                CALL.format(i).encode(), fill_call_id(reply.id_style, next(self._call_ids))
            )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
