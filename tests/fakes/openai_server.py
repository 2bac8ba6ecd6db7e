"""A scripted OpenAI-compatible Chat Completions server for tests and benchmarks.

`ScriptedOpenAIServer` is a real HTTP server on 127.0.0.1 (an ephemeral port), served by
uvicorn in a background thread with its own event loop, so the real `openai` client can
talk to it over real sockets. Tests queue `ScriptedReply` objects built by the helpers
below; each request to `/v1/chat/completions` consumes one. A reply answers a streaming
request with SSE chunks shaped like OpenAI's `chat.completion.chunk`, and a plain request
with one `chat.completion`.

Reply bytes are rendered when the helper is called; serving only substitutes the model
name and the tool call ids, so the server keeps up with benchmarks.

`vendor=` on `text_reply`, `tool_call_reply` and `refusal_reply` renders the stream in
the shape one OpenAI-compatible vendor sends (`VENDORS`; modelled on each vendor's
documented and published captured streams, not recorded live here):

- "openai": as described above; refusals stream in `delta.refusal`.
- "dashscope": Qwen's tool call deltas (`"id": ""` continuations, a closing
  `"function": {}`), thinking in `reasoning_content`, refusals as `content_filter`.
- "deepseek": usage on the finishing chunk whether asked or not, thinking in
  `reasoning_content`, refusals as `content_filter`.
- "vllm": a call's first delta has the name and no `arguments`, ids `chatcmpl-tool-…`,
  thinking in `reasoning_content`.
- "ollama": every call whole in one chunk, `finish_reason` "stop" even after tool
  calls, thinking in `reasoning`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tests.fakes.http import ThreadedServer

__all__ = [
    "VENDORS",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "error_reply",
    "refusal_reply",
    "stream_error_reply",
    "text_reply",
    "tool_call_reply",
]

_MODEL = "@@MODEL@@"
_MODEL_BYTES = _MODEL.encode()
_CALL = "@@CALL_{}@@"
_DONE = b"data: [DONE]\n\n"
_TEXT_CHUNK = 8
VENDORS = ("openai", "dashscope", "deepseek", "vllm", "ollama")
_REASONING_FIELD = {"ollama": "reasoning"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass(frozen=True)
class ScriptedReply:
    """One prepared answer. Build it with `text_reply`, `tool_call_reply`, `error_reply`
    or `stream_error_reply` rather than by hand.

    `events`/`events_with_usage` are the SSE frames for a streaming request (without and
    with `stream_options.include_usage`); when `events` is None a streaming request gets
    the same `status` and `body` as a plain one.
    """

    status: int
    body: bytes
    events: tuple[bytes, ...] | None = None
    events_with_usage: tuple[bytes, ...] | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    delay: float = 0.0
    call_count: int = 0
    chunk_delay: float = 0.0


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


def _stream_reply(
    deltas: list[dict[str, Any]],
    finish_reason: str,
    usage: tuple[int, int] | None,
    completion: dict[str, Any],
    delay: float,
    call_count: int = 0,
    vendor: str = "openai",
) -> ScriptedReply:
    """Frame `deltas` as chunks, add the finish and usage chunks, and the plain variant."""
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": _MODEL,
        "system_fingerprint": None,
    }
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
        for delta in deltas
    ]
    chunks.append(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
    )
    if vendor == "deepseek":
        # DeepSeek reports usage on the finishing chunk, asked for or not.
        if usage is not None:
            chunks[-1]["usage"] = _usage(usage)
        events = (*(_sse(chunk) for chunk in chunks), _DONE)
        return ScriptedReply(
            status=200,
            body=_completion_body(completion_id, created, completion, finish_reason, usage),
            events=events,
            events_with_usage=events,
            delay=delay,
            call_count=call_count,
        )
    events = (*(_sse(chunk) for chunk in chunks), _DONE)
    # With include_usage OpenAI puts "usage": null on every chunk, then a usage-only chunk.
    with_usage = [_sse({**chunk, "usage": None}) for chunk in chunks]
    if usage is not None:
        with_usage.append(_sse({**base, "choices": [], "usage": _usage(usage)}))
    return ScriptedReply(
        status=200,
        body=_completion_body(completion_id, created, completion, finish_reason, usage),
        events=events,
        events_with_usage=(*with_usage, _DONE),
        delay=delay,
        call_count=call_count,
    )


def _completion_body(
    completion_id: str,
    created: int,
    completion: dict[str, Any],
    finish_reason: str,
    usage: tuple[int, int] | None,
) -> bytes:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": _MODEL,
        "system_fingerprint": None,
        "choices": [
            {"index": 0, "message": completion, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage is not None:
        body["usage"] = _usage(usage)
    return json.dumps(body, separators=(",", ":")).encode()


def _check_vendor(vendor: str) -> None:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor shape {vendor!r}; one of {', '.join(VENDORS)}")


def text_reply(
    text: str,
    *,
    chunk_size: int = 8,
    usage: tuple[int, int] | None = (10, 5),
    finish_reason: str = "stop",
    delay: float = 0.0,
    reasoning: str = "",
    vendor: str = "openai",
    chunk_delay: float = 0.0,
) -> ScriptedReply:
    """A plain answer streamed in `chunk_size`-character pieces, after optional
    `reasoning` sent as `delta.reasoning_content` (DashScope/DeepSeek thinking; Ollama's
    `reasoning` with `vendor="ollama"`); `chunk_delay` seconds pass between chunks (a
    model that writes slowly)."""
    _check_vendor(vendor)
    field = _REASONING_FIELD.get(vendor, "reasoning_content")
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": None, field: piece} for piece in _pieces(reasoning, chunk_size)]
    deltas += [{"content": piece} for piece in _pieces(text, chunk_size)]
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message[field] = reasoning
    reply = _stream_reply(deltas, finish_reason, usage, message, delay, vendor=vendor)
    return dataclasses.replace(reply, chunk_delay=chunk_delay) if chunk_delay else reply


def refusal_reply(
    text: str, *, usage: tuple[int, int] | None = (10, 5), vendor: str = "openai"
) -> ScriptedReply:
    """The model declines: OpenAI streams `delta.refusal`; DashScope and DeepSeek end
    with `finish_reason` "content_filter"; vLLM and Ollama just answer in text."""
    _check_vendor(vendor)
    if vendor == "openai":
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None, "refusal": ""}]
        deltas += [{"refusal": piece} for piece in _pieces(text, _TEXT_CHUNK)]
        message = {"role": "assistant", "content": None, "refusal": text}
        return _stream_reply(deltas, "stop", usage, message, 0.0)
    finish = "content_filter" if vendor in ("dashscope", "deepseek") else "stop"
    return text_reply(text, usage=usage, finish_reason=finish, vendor=vendor)


def tool_call_reply(
    *calls: tuple[str, dict[str, Any] | str],
    text: str = "",
    split_arguments: int = 0,
    usage: tuple[int, int] | None = (10, 5),
    delay: float = 0.0,
    qwen_style: bool = False,
    vendor: str = "openai",
) -> ScriptedReply:
    """The model asks for `calls`, each `(name, arguments)`; a dict is JSON-encoded and a
    str is sent as is (to script malformed JSON). `split_arguments=N` streams each call's
    arguments in N-character fragments. `qwen_style` mimics DashScope: the first chunk of a
    call carries the first fragment, continuation chunks carry `"id": ""`, and a last
    chunk per call carries `"function": {}`. Ids are `call_<n>`, unique per server.
    `vendor` picks a vendor's shape (module docstring); "dashscope" implies `qwen_style`."""
    _check_vendor(vendor)
    qwen_style = qwen_style or vendor == "dashscope"
    if vendor == "ollama":
        return _ollama_tool_calls(calls, text, usage, delay)
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None if qwen_style else ""}]
    deltas += [{"content": piece} for piece in _pieces(text, _TEXT_CHUNK)]
    message_calls = []
    for index, (name, arguments) in enumerate(calls):
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = _CALL.format(index)
        message_calls.append(
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}
        )
        fragments = _pieces(raw, split_arguments) if split_arguments > 0 else ([raw] if raw else [])
        if qwen_style:
            first = fragments.pop(0) if fragments else ""
            deltas.append(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": first},
                        }
                    ],
                }
            )
            deltas += [
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "index": index,
                            "id": "",
                            "type": "function",
                            "function": {"arguments": fragment},
                        }
                    ],
                }
                for fragment in fragments
            ]
            deltas.append(
                {
                    "content": None,
                    "tool_calls": [{"index": index, "id": "", "type": "function", "function": {}}],
                }
            )
        elif vendor == "vllm":
            deltas.append(
                {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"chatcmpl-tool-{call_id}",
                            "type": "function",
                            "index": index,
                            "function": {"name": name},
                        }
                    ],
                }
            )
            deltas += [
                {
                    "content": None,
                    "tool_calls": [{"index": index, "function": {"arguments": fragment}}],
                }
                for fragment in fragments
            ]
        else:
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
            deltas += [
                {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                for fragment in fragments
            ]
    message = {
        "role": "assistant",
        "content": text or None,
        "refusal": None,
        "tool_calls": message_calls,
    }
    return _stream_reply(
        deltas, "tool_calls", usage, message, delay, call_count=len(calls), vendor=vendor
    )


def _ollama_tool_calls(
    calls: tuple[tuple[str, dict[str, Any] | str], ...],
    text: str,
    usage: tuple[int, int] | None,
    delay: float,
) -> ScriptedReply:
    """Ollama sends all calls whole in one chunk and finishes with "stop"."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in _pieces(text, _TEXT_CHUNK)]
    message_calls = [
        {
            "id": _CALL.format(index),
            "index": index,
            "type": "function",
            "function": {
                "name": name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        }
        for index, (name, arguments) in enumerate(calls)
    ]
    deltas.append({"role": "assistant", "content": "", "tool_calls": message_calls})
    message = {"role": "assistant", "content": text, "tool_calls": message_calls}
    return _stream_reply(
        deltas, "stop", usage, message, delay, call_count=len(calls), vendor="ollama"
    )


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status in (401, 403):
        return "authentication_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_reply(
    status: int,
    *,
    message: str = "error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> ScriptedReply:
    """An HTTP error with OpenAI's body `{"error": {"message", "type", "param", "code"}}`,
    for streaming and plain requests alike. `headers` e.g. `{"retry-after-ms": "10"}`."""
    body = {"error": {"message": message, "type": _error_type(status), "param": None, "code": code}}
    return ScriptedReply(
        status=status,
        body=json.dumps(body).encode(),
        headers=tuple((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    )


def stream_error_reply(message: str) -> ScriptedReply:
    """A stream that starts an answer, then sends an `{"error": ...}` chunk and ends
    without `[DONE]`. A plain request gets a 500 with the same message."""
    partial = text_reply("Partial answer that will be cut", usage=None)
    assert partial.events is not None
    error = _sse(
        {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    )
    events = (*partial.events[:3], error)
    return ScriptedReply(
        status=500,
        body=error_reply(500, message=message).body,
        events=events,
        events_with_usage=events,
    )


_NO_REPLY = error_reply(500, message="no scripted reply")
_NOT_FOUND = error_reply(404, message="unknown path")


class ScriptedOpenAIServer:
    """A real OpenAI-compatible HTTP server answering from a queue of scripted replies.

    Use `start()`/`stop()` or `with ScriptedOpenAIServer() as server:`. Point a client at
    `base_url`. `requests` and `request_headers` record what each chat completion request
    carried (headers with lower-case names), in order; `request_clients` the client's
    (host, port), so a test can tell whether connections were reused.
    """

    def __init__(self) -> None:
        self.base_url = ""
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.request_clients: list[tuple[str, int]] = []
        self._queue: deque[ScriptedReply] = deque()
        self._default: ScriptedReply | None = None
        self._request_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._http = ThreadedServer(self._app, name="scripted-openai")

    def start(self) -> None:
        """Bind an ephemeral port and serve in a background thread; returns when ready."""
        self._http.start()
        self.base_url = f"http://127.0.0.1:{self._http.port}/v1"

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._http.stop()

    def __enter__(self) -> ScriptedOpenAIServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def script(self, *replies: ScriptedReply) -> None:
        """Queue replies; each request consumes one, in order."""
        self._queue.extend(replies)

    def set_default(self, reply: ScriptedReply | None) -> None:
        """Answer with `reply` whenever the queue is empty (None: a 500 error)."""
        self._default = reply

    def reset(self) -> None:
        """Forget queued replies, the default and the recorded requests."""
        self._queue.clear()
        self._default = None
        self.requests.clear()
        self.request_headers.clear()
        self.request_clients.clear()

    def _next_reply(self) -> ScriptedReply:
        try:
            return self._queue.popleft()
        except IndexError:
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
        reply = self._next_reply()
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
            (_CALL.format(i).encode(), b"call_%d" % next(self._call_ids))
            for i in range(reply.call_count)
        ]
        # No pause between chunks, so one write carries them all: the client still parses
        # one SSE event per chunk, and the server stays fast enough for benchmarks.
        body = b"".join(events).replace(_MODEL_BYTES, model)
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

    async def _send_whole(
        self,
        send: Callable[[Message], Awaitable[None]],
        reply: ScriptedReply,
        request_id: bytes,
        model: bytes,
    ) -> None:
        body = reply.body.replace(_MODEL_BYTES, model)
        for i in range(reply.call_count):
            body = body.replace(_CALL.format(i).encode(), b"call_%d" % next(self._call_ids))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
