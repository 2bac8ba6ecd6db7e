"""A scripted Anthropic Messages API server for tests: real HTTP on 127.0.0.1, port 0.

`ScriptedAnthropicServer` reuses `ScriptedOpenAIServer`'s machinery (uvicorn thread,
reply queue, request recording) and answers `POST /v1/messages`. Replies are built by
the helpers below in the Messages API's SSE shape: `message_start`, per content block
`content_block_start`/`content_block_delta` (`text_delta`, `input_json_delta`,
`thinking_delta`)/`content_block_stop`, then `message_delta` (stop reason, output
tokens) and `message_stop`, with `event:` lines as the API sends them.

Like the real API, the server rejects (HTTP 400, `invalid_request_error`) a request that
breaks the Messages API's rules, so tests prove that what Parley sends is valid:
`validate_request` lists the rules checked.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from tests.fakes.openai_server import Message, Scope, ScriptedOpenAIServer, ScriptedReply

__all__ = [
    "ScriptedAnthropicServer",
    "anthropic_error_reply",
    "anthropic_stream_error_reply",
    "anthropic_text_reply",
    "anthropic_tool_reply",
    "validate_request",
]

_MODEL = "@@MODEL@@"
_CALL = "@@CALL_{}@@"


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _pieces(text: str, size: int) -> list[str]:
    size = max(size, 1)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _message(
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    stop_reason: str,
    usage: tuple[int, int],
    plain_content: list[dict[str, Any]],
    call_count: int = 0,
) -> ScriptedReply:
    message_id = f"msg_{secrets.token_hex(12)}"
    events = [
        _event(
            "message_start",
            {
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": _MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": usage[0],
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                    },
                }
            },
        ),
        _event("ping", {}),
    ]
    for index, (start, deltas) in enumerate(blocks):
        events.append(_event("content_block_start", {"index": index, "content_block": start}))
        events += [
            _event("content_block_delta", {"index": index, "delta": delta}) for delta in deltas
        ]
        events.append(_event("content_block_stop", {"index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            },
        )
    )
    events.append(_event("message_stop", {}))
    body = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": _MODEL,
        "content": plain_content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }
    return ScriptedReply(
        status=200,
        body=json.dumps(body).encode(),
        events=tuple(events),
        events_with_usage=tuple(events),
        call_count=call_count,
    )


def _text_block(text: str, chunk_size: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(text, chunk_size)]
    return {"type": "text", "text": ""}, deltas


def anthropic_text_reply(
    text: str,
    *,
    chunk_size: int = 8,
    usage: tuple[int, int] = (10, 5),
    stop_reason: str = "end_turn",
    thinking: str = "",
) -> ScriptedReply:
    """A plain answer in `chunk_size` pieces, after an optional `thinking` block."""
    blocks = []
    if thinking:
        blocks.append(
            (
                {"type": "thinking", "thinking": "", "signature": ""},
                [
                    *(
                        {"type": "thinking_delta", "thinking": piece}
                        for piece in _pieces(thinking, chunk_size)
                    ),
                    {"type": "signature_delta", "signature": "c2lnbmF0dXJl"},
                ],
            )
        )
    if text:
        blocks.append(_text_block(text, chunk_size))
    plain = [{"type": "text", "text": text}] if text else []
    return _message(blocks, stop_reason, usage, plain)


def anthropic_tool_reply(
    *calls: tuple[str, dict[str, Any] | str],
    text: str = "",
    split_arguments: int = 0,
    usage: tuple[int, int] = (10, 5),
) -> ScriptedReply:
    """The model asks for `calls`, each `(name, input)`: a dict is JSON-encoded, a str sent
    as is (malformed JSON). `split_arguments=N` streams `input_json_delta`s of N chars.
    Ids are `toolu_<n>`, unique per server."""
    blocks = [_text_block(text, 8)] if text else []
    plain: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for index, (name, arguments) in enumerate(calls):
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = _CALL.format(index)
        fragments = _pieces(raw, split_arguments) if split_arguments > 0 else [raw]
        blocks.append(
            (
                {"type": "tool_use", "id": call_id, "name": name, "input": {}},
                [{"type": "input_json_delta", "partial_json": ""}]
                + [{"type": "input_json_delta", "partial_json": f} for f in fragments if f],
            )
        )
        try:
            value = json.loads(raw)
        except ValueError:
            value = {}
        plain.append({"type": "tool_use", "id": call_id, "name": name, "input": value})
    return _message(blocks, "tool_use", usage, plain, call_count=len(calls))


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error_reply(
    status: int, *, message: str = "error", headers: dict[str, str] | None = None
) -> ScriptedReply:
    """An HTTP error with the API's body `{"type": "error", "error": {"type", "message"}}`."""
    body = {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_fake",
    }
    return ScriptedReply(
        status=status,
        body=json.dumps(body).encode(),
        headers=tuple((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    )


def anthropic_stream_error_reply(message: str, kind: str = "overloaded_error") -> ScriptedReply:
    """A stream that starts an answer, then sends an `error` event and ends."""
    partial = anthropic_text_reply("Partial answer that will be cut")
    assert partial.events is not None
    events = (*partial.events[:4], _event("error", {"error": {"type": kind, "message": message}}))
    return ScriptedReply(status=200, body=partial.body, events=events, events_with_usage=events)


def validate_request(payload: Any) -> str | None:
    """Why the Messages API would reject this request body with a 400, or None.

    Checked: model and max_tokens present; messages non-empty, starting with a user turn
    and alternating user/assistant (no system or tool role); blocks are text (non-empty),
    tool_use or tool_result; every tool_use id is answered by a tool_result in the very
    next (user) message, and every tool_result answers a tool_use of the message before;
    no tool_use id appears twice in the request;
    tools have name, input_schema of type object and a valid name.
    """
    if not isinstance(payload, dict):
        return "body must be an object"
    if not payload.get("model"):
        return "model: Field required"
    if not isinstance(payload.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if "system" in payload and not isinstance(payload["system"], str | list):
        return "system: must be a string or a list of blocks"
    expected = "user"
    open_calls: set[str] = set()
    seen_calls: set[str] = set()
    for number, message in enumerate(messages):
        role = message.get("role")
        if role != expected:
            return f"messages.{number}.role: expected {expected!r}, got {role!r}"
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            return f"messages.{number}: content must be non-empty"
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if open_calls - answered:
            return (
                f"messages.{number}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(open_calls - answered))}"
            )
        if answered - open_calls:
            return f"messages.{number}: unexpected `tool_use_id` in `tool_result` blocks"
        open_calls = set()
        for position, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text" and not block.get("text"):
                return f"messages.{number}: text content blocks must be non-empty"
            if kind == "tool_use":
                if role != "assistant" or not isinstance(block.get("input"), dict):
                    return f"messages.{number}: invalid tool_use block"
                if str(block.get("id")) in seen_calls:  # across the whole request
                    return f"messages.{number}.content.{position}: `tool_use` ids must be unique"
                seen_calls.add(str(block.get("id")))
                open_calls.add(str(block.get("id")))
            elif kind == "tool_result" and role != "user":
                return f"messages.{number}: tool_result only in user messages"
            elif kind not in ("text", "tool_use", "tool_result"):
                return f"messages.{number}: unsupported block type {kind!r}"
        expected = "assistant" if role == "user" else "user"
    for number, tool in enumerate(payload.get("tools") or []):
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{number}.input_schema: must be an object schema"
        if not tool.get("name"):
            return f"tools.{number}.name: Field required"
    return None


class ScriptedAnthropicServer(ScriptedOpenAIServer):
    """A real Anthropic-shaped HTTP server answering from a queue of scripted replies.

    `base_url` is the root (`http://127.0.0.1:<port>`), as `AsyncAnthropic` expects; the
    client posts to `/v1/messages`. `rejected` lists why invalid requests were refused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rejected: list[str] = []

    def start(self) -> None:
        super().start()
        self.base_url = self.base_url.removesuffix("/v1")

    def reset(self) -> None:
        super().reset()
        self.rejected.clear()

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
        if scope["method"] != "POST" or scope["path"].rstrip("/") != "/v1/messages":
            await self._send(send, anthropic_error_reply(404, message="Not found"), b"")
            return
        try:
            payload = json.loads(b"".join(chunks))
        except ValueError:
            await self._send(send, anthropic_error_reply(400, message="body is not JSON"), b"")
            return
        self.requests.append(payload)
        self.request_headers.append(
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        )
        problem = validate_request(payload)
        if problem is not None:
            self.rejected.append(problem)
            await self._send(send, anthropic_error_reply(400, message=problem), b"")
            return
        reply = self._next_reply()
        model = json.dumps(str(payload.get("model", "")))[1:-1].encode()
        if not payload.get("stream") or reply.events is None:
            await self._send(send, reply, model)
            return
        body = b"".join(reply.events)
        await self._send(send, reply, model, body=body, content_type=b"text/event-stream")

    async def _send(
        self,
        send: Callable[[Message], Awaitable[None]],
        reply: ScriptedReply,
        model: bytes,
        *,
        body: bytes | None = None,
        content_type: bytes = b"application/json",
    ) -> None:
        data = (reply.body if body is None else body).replace(_MODEL.encode(), model)
        for i in range(reply.call_count):
            data = data.replace(_CALL.format(i).encode(), b"toolu_%d" % next(self._call_ids))
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(data)).encode()),
            (b"request-id", b"req_%d" % next(self._request_ids)),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})
