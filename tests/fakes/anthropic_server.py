"""A scripted Anthropic Messages API server for tests: real HTTP on 127.0.0.1, port 0.

`ScriptedAnthropicServer` reuses `ScriptedOpenAIServer`'s machinery (uvicorn thread,
reply queue, request recording) and answers `POST /v1/messages`. Replies are built by
the helpers below in the Messages API's SSE shape: `message_start`, per content block
`content_block_start`/`content_block_delta` (`text_delta`, `input_json_delta`,
`thinking_delta`, `signature_delta`)/`content_block_stop`, then `message_delta` (stop
reason, output tokens) and `message_stop`, with `event:` lines as the API sends them.

Thinking is signed as the API signs it: each `thinking` block's signature (and each
`redacted_thinking` block's opaque `data`) is an HMAC under the server's own key over the
model and the block, made when the reply is sent, so a block that comes back edited, from
another model or from another server fails its check.

Like the real API, the server rejects (HTTP 400, `invalid_request_error`, the API's own
wording where it is known) a request that breaks the Messages API's rules, so tests prove
that what Parley sends is valid: `tests/fakes/anthropic_rules.py` lists the rules checked.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.anthropic_rules import Signer, prefix_digest, validate_request
from tests.fakes.openai_server import Message, Scope, ScriptedOpenAIServer, ScriptedReply

__all__ = [
    "AnthropicReply",
    "ScriptedAnthropicServer",
    "Signer",
    "anthropic_cut_reply",
    "anthropic_error_reply",
    "anthropic_stream_error_reply",
    "anthropic_text_reply",
    "anthropic_tool_reply",
    "validate_request",
]

_MODEL = "@@MODEL@@"
_CALL = "@@CALL_{}@@"
_SIGNATURE = "@@SIG_{}@@"
_REDACTED = "@@REDACTED_{}@@"


@dataclass(frozen=True)
class AnthropicReply(ScriptedReply):
    """A reply whose thinking is signed when it is sent: `thinking` holds the text of each
    signed block (`@@SIG_<i>@@` in the events), `redacted` the number of
    `redacted_thinking` blocks (`@@REDACTED_<i>@@`)."""

    thinking: tuple[str, ...] = ()
    redacted: int = 0


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


def _thinking_blocks(
    thinking: str | tuple[str, ...], redacted: int, chunk_size: int
) -> tuple[
    list[tuple[dict[str, Any], list[dict[str, Any]]]], list[dict[str, Any]], tuple[str, ...]
]:
    """Streamed blocks, plain content and texts of the thinking that leads a reply."""
    texts = ((thinking,) if thinking else ()) if isinstance(thinking, str) else thinking
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    plain: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        signature = _SIGNATURE.format(i)
        deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(text, chunk_size)]
        blocks.append(
            (
                {"type": "thinking", "thinking": ""},
                [*deltas, {"type": "signature_delta", "signature": signature}],
            )
        )
        plain.append({"type": "thinking", "thinking": text, "signature": signature})
    for i in range(redacted):
        block = {"type": "redacted_thinking", "data": _REDACTED.format(i)}
        blocks.append((block, []))
        plain.append(block)
    return blocks, plain, texts


def _signed(reply: ScriptedReply, texts: tuple[str, ...], redacted: int) -> ScriptedReply:
    if not texts and not redacted:
        return reply
    return AnthropicReply(
        status=reply.status,
        body=reply.body,
        events=reply.events,
        events_with_usage=reply.events_with_usage,
        call_count=reply.call_count,
        thinking=texts,
        redacted=redacted,
    )


def anthropic_text_reply(
    text: str,
    *,
    chunk_size: int = 8,
    usage: tuple[int, int] = (10, 5),
    stop_reason: str = "end_turn",
    thinking: str | tuple[str, ...] = "",
    redacted: int = 0,
) -> ScriptedReply:
    """A plain answer in `chunk_size` pieces, after optional signed `thinking` blocks (a
    tuple for several; `("",)` for one whose text is omitted, signature only) and
    `redacted` `redacted_thinking` blocks."""
    blocks, plain, texts = _thinking_blocks(thinking, redacted, chunk_size)
    if text:
        blocks.append(_text_block(text, chunk_size))
        plain.append({"type": "text", "text": text})
    return _signed(_message(blocks, stop_reason, usage, plain), texts, redacted)


def anthropic_tool_reply(
    *calls: tuple[str, dict[str, Any] | str],
    text: str = "",
    split_arguments: int = 0,
    usage: tuple[int, int] = (10, 5),
    thinking: str | tuple[str, ...] = "",
    redacted: int = 0,
) -> ScriptedReply:
    """The model asks for `calls`, each `(name, input)`: a dict is JSON-encoded, a str sent
    as is (malformed JSON). `split_arguments=N` streams `input_json_delta`s of N chars.
    Ids are `toolu_<n>`, unique per server. `thinking` and `redacted` lead the reply as in
    `anthropic_text_reply`."""
    blocks, plain, texts = _thinking_blocks(thinking, redacted, 8)
    if text:
        blocks.append(_text_block(text, 8))
        plain.append({"type": "text", "text": text})
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
    reply = _message(blocks, "tool_use", usage, plain, call_count=len(calls))
    return _signed(reply, texts, redacted)


def anthropic_cut_reply(
    text: str, *, chunk_size: int = 8, keep_delta: bool = False
) -> ScriptedReply:
    """A stream that ends cleanly after some of `text`, without `message_stop` (and, unless
    `keep_delta`, without the `message_delta` that carries the stop reason)."""
    whole = anthropic_text_reply(text, chunk_size=chunk_size)
    assert whole.events is not None
    events = whole.events[:-1] if keep_delta else whole.events[:-3]  # the block stays open
    return ScriptedReply(status=200, body=whole.body, events=events, events_with_usage=events)


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


class ScriptedAnthropicServer(ScriptedOpenAIServer):
    """A real Anthropic-shaped HTTP server answering from a queue of scripted replies.

    `base_url` is the root (`http://127.0.0.1:<port>`), as `AsyncAnthropic` expects; the
    client posts to `/v1/messages`. `rejected` lists why invalid requests were refused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rejected: list[str] = []
        self.signer = Signer()
        # Like the newest models: no `thinking` parameter means adaptive thinking.
        self.thinks_by_default = False
        # Like models with preserved thinking: a block is valid only after the same
        # system, tools and earlier messages it was made after.
        self.checks_prefix = False

    def started(self, root: str) -> None:
        self.base_url = root

    def reset(self) -> None:
        super().reset()
        self.rejected.clear()
        self.thinks_by_default = False
        self.checks_prefix = False

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
        problem = validate_request(
            payload,
            self.signer,
            thinks_by_default=self.thinks_by_default,
            checks_prefix=self.checks_prefix,
        )
        if problem is not None:
            self.rejected.append(problem)
            await self._send(send, anthropic_error_reply(400, message=problem), b"")
            return
        prefix = prefix_digest(payload, len(payload["messages"])) if self.checks_prefix else ""
        reply = self._sign(self._next_reply(payload), str(payload["model"]), prefix)
        model = json.dumps(str(payload["model"]))[1:-1].encode()
        if not payload.get("stream") or reply.events is None:
            await self._send(send, reply, model)
            return
        body = b"".join(reply.events)
        await self._send(send, reply, model, body=body, content_type=b"text/event-stream")

    def _sign(self, reply: ScriptedReply, model: str, prefix: str) -> ScriptedReply:
        """The reply with its thinking signed for `model`, as the API signs it."""
        if not isinstance(reply, AnthropicReply):
            return reply
        marks = [
            (_SIGNATURE.format(i), self.signer.signature(model, text, prefix))
            for i, text in enumerate(reply.thinking)
        ] + [
            (_REDACTED.format(i), self.signer.redacted_data(model, prefix))
            for i in range(reply.redacted)
        ]

        def signed(data: bytes) -> bytes:
            for mark, value in marks:
                data = data.replace(mark.encode(), value.encode())
            return data

        events = tuple(signed(e) for e in reply.events) if reply.events is not None else None
        return ScriptedReply(
            status=reply.status,
            body=signed(reply.body),
            events=events,
            events_with_usage=events,
            headers=reply.headers,
            call_count=reply.call_count,
        )

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
