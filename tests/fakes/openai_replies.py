"""The replies `ScriptedOpenAIServer` (tests/fakes/openai_server.py) serves, in the shape
each OpenAI-compatible vendor streams.

A reply answers a streaming request with SSE chunks shaped like OpenAI's
`chat.completion.chunk`, and a plain request with one `chat.completion`. Reply bytes are
rendered when the helper is called; serving only substitutes the model name, the tool
call ids and Gemini's thought signature, so the server keeps up with benchmarks.

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
- "ollama": each call whole in its own chunk, all at index 0, `finish_reason` "stop"
  even after tool calls, thinking in `reasoning`.
- "gemini": each call whole in its own chunk without `index`, the first call of a round
  signed (`extra_content.google.thought_signature`), `finish_reason` "stop"; refusals
  as `content_filter`; errors as a JSON array (`gemini_error_reply`).
- "ernie": OpenAI's shape, thinking (ERNIE X1) in `reasoning_content`; errors with
  Qianfan's `code`/`type` strings (`ernie_error_reply`).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

MODEL = "@@MODEL@@"
# A fresh signature per served reply: the server swaps it for "sig-<n>" and remembers it.
GEMINI_SIGNATURE = "@@SIGNATURE@@"
SIGNATURE_BYTES = GEMINI_SIGNATURE.encode()
MODEL_BYTES = MODEL.encode()
CALL = "@@CALL_{}@@"
_DONE = b"data: [DONE]\n\n"
_TEXT_CHUNK = 8
VENDORS = (
    "openai", "dashscope", "deepseek", "vllm", "ollama", "gemini", "ernie",
    "kimi", "glm", "minimax", "openrouter", "mistral", "ark", "siliconflow",
)  # fmt: skip
_REASONING_FIELD = {"ollama": "reasoning", "openrouter": "reasoning"}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_OPENROUTER_COMMENT = b": OPENROUTER PROCESSING\n\n"


ID_STYLES = ("kimi", "mistral", "vllm")


def _call_id(vendor: str, name: str, index: int) -> str:
    """The id a vendor gives a call, around the placeholder the server fills in per
    `ScriptedReply.id_style`: Kimi `functions.<name>:<n>` (a counter), Mistral nine letters
    and digits, vLLM `chatcmpl-tool-` and 32 hex digits; others `call_<n>`."""
    if vendor == "kimi":
        return f"functions.{name}:{CALL.format(index)}"
    if vendor == "vllm":
        return f"chatcmpl-tool-{CALL.format(index)}"
    return CALL.format(index)


def fill_call_id(style: str, number: int) -> bytes:
    """What the server puts in a call id placeholder, in a vendor's `style`."""
    if style == "kimi":
        return b"%d" % number
    if style == "mistral":
        return "".join(secrets.choice(_ALNUM) for _ in range(9)).encode()
    if style == "vllm":
        return secrets.token_hex(16).encode()
    return b"call_%d" % number


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
    id_style: str = ""  # how the server fills call ids in (`fill_call_id`)
    # The stream opens, then sends nothing until the test sets it: a model that pauses
    # for exactly as long as the test needs (`dataclasses.replace(reply, gate=event)`).
    gate: threading.Event | None = None


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
    finish_delta: dict[str, Any] | None = None,
) -> ScriptedReply:
    """Frame `deltas` as chunks, add the finish and usage chunks, and the plain variant.
    `finish_delta` rides on the finishing chunk (vLLM sends the rest of a call there)."""
    completion_id = f"chatcmpl-{secrets.token_hex(12)}"
    created = int(time.time())
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
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
                {
                    "index": 0,
                    "delta": finish_delta or {},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
        }
    )
    if vendor in ("deepseek", "mistral", "kimi"):
        # DeepSeek and Mistral report usage on the finishing chunk, asked for or not; Kimi
        # inside its choice.
        if usage is not None:
            if vendor == "kimi":
                chunks[-1]["choices"][0]["usage"] = _usage(usage)
            else:
                chunks[-1]["usage"] = _usage(usage)
        events = (*(_sse(chunk) for chunk in chunks), _DONE)
        return ScriptedReply(
            status=200,
            body=_completion_body(completion_id, created, completion, finish_reason, usage),
            events=events,
            events_with_usage=events,
            delay=delay,
            call_count=call_count,
            id_style=vendor if vendor in ID_STYLES else "",
        )
    comment = (_OPENROUTER_COMMENT,) if vendor == "openrouter" else ()
    events = (*comment, *(_sse(chunk) for chunk in chunks), _DONE)
    # With include_usage OpenAI puts "usage": null on every chunk, then a usage-only chunk.
    with_usage = [_sse({**chunk, "usage": None}) for chunk in chunks]
    if usage is not None:
        with_usage.append(_sse({**base, "choices": [], "usage": _usage(usage)}))
    return ScriptedReply(
        status=200,
        body=_completion_body(completion_id, created, completion, finish_reason, usage),
        events=events,
        events_with_usage=(*comment, *with_usage, _DONE),
        delay=delay,
        call_count=call_count,
        id_style=vendor if vendor in ID_STYLES else "",
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
        "model": MODEL,
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
    if vendor == "minimax":
        # M2 thinks inline, in the content.
        text = f"<think>{reasoning}</think>\n\n{text}" if reasoning else text
        reasoning = ""
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
    finish = "content_filter" if vendor in ("dashscope", "deepseek", "gemini") else "stop"
    return text_reply(text, usage=usage, finish_reason=finish, vendor=vendor)


def tool_call_reply(
    *calls: tuple[str, dict[str, Any] | str],
    text: str = "",
    split_arguments: int = 0,
    usage: tuple[int, int] | None = (10, 5),
    delay: float = 0.0,
    qwen_style: bool = False,
    vendor: str = "openai",
    reasoning: str = "",
    object_arguments: bool = False,
    rest_on_finish: bool = False,
) -> ScriptedReply:
    """The model asks for `calls`, each `(name, arguments)`; a dict is JSON-encoded and a
    str is sent as is (to script malformed JSON). `split_arguments=N` streams each call's
    arguments in N-character fragments. `qwen_style` mimics DashScope: the first chunk of a
    call carries the first fragment, continuation chunks carry `"id": ""`, and a last
    chunk per call carries `"function": {}`. Ids are `call_<n>`, unique per server.
    `vendor` picks a vendor's shape (module docstring); "dashscope" implies `qwen_style`.
    `reasoning` streams first in the vendor's reasoning field (a thinking model);
    `object_arguments` (Ollama) sends dict arguments as JSON objects, not strings;
    `rest_on_finish` (vLLM's hermes parser) sends the last call's last argument fragment
    on the finishing chunk."""
    _check_vendor(vendor)
    qwen_style = qwen_style or vendor == "dashscope"
    field = _REASONING_FIELD.get(vendor, "reasoning_content")
    thought = [{"content": None, field: piece} for piece in _pieces(reasoning, _TEXT_CHUNK)]
    details: list[dict[str, Any]] = []
    if vendor == "minimax":
        text = f"<think>{reasoning}</think>\n\n{text}" if reasoning else text
        thought, reasoning = [], ""
    elif vendor == "openrouter":
        # Readable reasoning in `reasoning` and in `reasoning_details` pieces, then the
        # signed item Gemini (behind OpenRouter) wants back with the round.
        for delta in thought:
            piece = {"type": "reasoning.text", "text": delta[field], "index": 0}
            delta["reasoning_details"] = [{**piece, "format": "unknown"}]
        details = [
            {
                "type": "reasoning.encrypted",
                "data": GEMINI_SIGNATURE,
                "index": 1,
                "format": "google-gemini-v1",
            }
        ]
    if vendor == "ollama":
        return _ollama_tool_calls(calls, text, usage, delay, thought, object_arguments)
    if vendor == "gemini":
        return _gemini_tool_calls(calls, text, usage, delay)
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None if qwen_style else ""}]
    deltas += thought
    if details:
        deltas.append({"content": None, "reasoning_details": details})
    deltas += [{"content": piece} for piece in _pieces(text, _TEXT_CHUNK)]
    message_calls = []
    for index, (name, arguments) in enumerate(calls):
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call_id = _call_id(vendor, name, index)
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
                            "id": call_id,
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
    if reasoning:
        message[field] = reasoning
    finish_delta = None
    if rest_on_finish and deltas[-1].get("tool_calls"):
        finish_delta = deltas.pop()
    return _stream_reply(
        deltas,
        "tool_calls",
        usage,
        message,
        delay,
        call_count=len(calls),
        vendor=vendor,
        finish_delta=finish_delta,
    )


def _ollama_tool_calls(
    calls: tuple[tuple[str, dict[str, Any] | str], ...],
    text: str,
    usage: tuple[int, int] | None,
    delay: float,
    thought: list[dict[str, Any]],
    object_arguments: bool,
) -> ScriptedReply:
    """Ollama sends each call whole in its own chunk, every one at index 0, and finishes
    with "stop" (ollama#7963, vercel/ai#14277)."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}, *thought]
    deltas += [{"content": piece} for piece in _pieces(text, _TEXT_CHUNK)]
    message_calls = []
    for index, (name, arguments) in enumerate(calls):
        if isinstance(arguments, str) or not object_arguments:
            sent: Any = arguments if isinstance(arguments, str) else json.dumps(arguments)
        else:
            sent = arguments
        call = {
            "id": CALL.format(index),
            "index": 0,
            "type": "function",
            "function": {"name": name, "arguments": sent},
        }
        message_calls.append(call)
        deltas.append({"role": "assistant", "content": "", "tool_calls": [call]})
    message = {"role": "assistant", "content": text, "tool_calls": message_calls}
    return _stream_reply(
        deltas, "stop", usage, message, delay, call_count=len(calls), vendor="ollama"
    )


def _gemini_tool_calls(
    calls: tuple[tuple[str, dict[str, Any] | str], ...],
    text: str,
    usage: tuple[int, int] | None,
    delay: float,
) -> ScriptedReply:
    """Gemini sends each call whole in its own chunk, without `index`; only the first call
    of a parallel set carries a thought signature (thought-signatures page); finish
    "stop" (python-genai#2868)."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in _pieces(text, _TEXT_CHUNK)]
    message_calls = []
    for index, (name, arguments) in enumerate(calls):
        call: dict[str, Any] = {
            "id": CALL.format(index),
            "type": "function",
            "function": {
                "name": name,
                "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments),
            },
        }
        if index == 0:
            call["extra_content"] = {"google": {"thought_signature": GEMINI_SIGNATURE}}
        message_calls.append(call)
        deltas.append({"role": "assistant", "tool_calls": [call]})
    message = {"role": "assistant", "content": text or None, "tool_calls": message_calls}
    return _stream_reply(
        deltas, "stop", usage, message, delay, call_count=len(calls), vendor="gemini"
    )


def markup_tool_reply(
    *calls: tuple[str, dict[str, Any]],
    text: str = "",
    chunk_size: int = 5,
    vendor: str = "vllm",
    close: bool = True,
) -> ScriptedReply:
    """A model whose server has no matching tool-call parser: the calls arrive as Hermes
    `<tool_call>{"name": …, "arguments": …}</tool_call>` text in `content`, finish "stop"
    (vllm#19056). Tags are split across `chunk_size`-character chunks; `close=False`
    leaves the last block unclosed (a model cut short)."""
    _check_vendor(vendor)
    blocks = [
        "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"
        for name, arguments in calls
    ]
    content = text + ("\n" if text and blocks else "") + "\n".join(blocks)
    if not close:
        content = content.removesuffix("\n</tool_call>")
    return text_reply(content, chunk_size=chunk_size, vendor=vendor)


def deltas_reply(
    *deltas: dict[str, Any],
    finish_reason: str | None = "stop",
    done: bool = True,
    raw: bytes = b"",
) -> ScriptedReply:
    """Exactly these `delta`s, one chunk each, then `raw` SSE bytes as given, a finishing
    chunk (unless `finish_reason` is None) and `[DONE]` (unless `done` is False): for the
    terminator, error and tool-call shapes no builder above makes. Streaming requests only."""
    base = {"id": "chatcmpl-deltas", "object": "chat.completion.chunk", "model": MODEL}
    frames = [
        _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        for delta in deltas
    ]
    if raw:
        frames.append(raw)
    if finish_reason is not None:
        frames.append(
            _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
        )
    if done:
        frames.append(_DONE)
    body = error_reply(400, message="deltas_reply answers streaming requests only").body
    return ScriptedReply(400, body, tuple(frames), tuple(frames))


def cut_reply(text: str, *, vendor: str = "openai") -> ScriptedReply:
    """An answer whose stream ends cleanly after some text: no finish reason, no [DONE]
    (a proxy or server that dropped the rest). A plain request gets the whole answer."""
    whole = text_reply(text, vendor=vendor, usage=None)
    assert whole.events is not None
    # Drop the finishing chunk and [DONE]; what is left ends mid-answer.
    events = whole.events[:-2]
    return dataclasses.replace(whole, events=events, events_with_usage=events)


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


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def gemini_error_reply(
    status: int, *, message: str = "error", retry_delay: str | None = None
) -> ScriptedReply:
    """Gemini's error: a JSON array of one `{"error": {"code", "message", "status"}}`; a
    429 names its delay only in `details` (`google.rpc.RetryInfo`), never in a header."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if retry_delay is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    return ScriptedReply(status=status, body=json.dumps([{"error": error}]).encode())


def ernie_error_reply(status: int, *, message: str, code: str, kind: str) -> ScriptedReply:
    """Qianfan's error: `{"error": {"code", "message", "type"}, "id"}` with string codes
    (malformed_json, invalid_model, rpm_rate_limit_exceeded …)."""
    body = {"error": {"code": code, "message": message, "type": kind}, "id": "as-fake"}
    return ScriptedReply(status=status, body=json.dumps(body).encode())


def vendor_error_reply(vendor: str, status: int, message: str, code: str | None) -> ScriptedReply:
    """An error in the body shape `vendor` answers with."""
    if vendor == "gemini":
        return gemini_error_reply(status, message=message)
    if vendor == "siliconflow":  # {"code": 20015, "message": ...}, no "error" wrapper
        body: dict[str, Any] = {"code": int(code or 20015), "message": message, "data": None}
        return ScriptedReply(status=status, body=json.dumps(body).encode())
    if vendor == "mistral":
        body = {"object": "error", "message": message, "type": code or "invalid_request_error"}
        body.update(param=None, code=None)
        return ScriptedReply(status=status, body=json.dumps(body).encode())
    if vendor in ("glm", "ark", "openrouter"):
        kind = {"ark": "BadRequest"}.get(vendor)
        error = {"code": code if vendor != "openrouter" else status, "message": message}
        if kind:
            error["type"] = kind
        return ScriptedReply(status=status, body=json.dumps({"error": error}).encode())
    if vendor == "ernie":
        return ernie_error_reply(
            status, message=message, code=code or "invalid_argument", kind="invalid_request_error"
        )
    return error_reply(status, message=message, code=code)


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


def openrouter_error_reply(text: str, *, code: str | int = "server_error") -> ScriptedReply:
    """OpenRouter's error after the stream started (openrouter.ai/docs, streaming: "Handling
    Errors During Streaming"): an SSE comment, then `text`, then one chunk with a top-level
    `error` and `finish_reason: "error"`, then the stream ends. A plain request gets a 502."""
    partial = text_reply(text, usage=None) if text else None
    frames: list[bytes] = [b": OPENROUTER PROCESSING\n\n"]
    if partial is not None:
        assert partial.events is not None
        frames += partial.events[:-2]
    frames.append(
        _sse(
            {
                "id": "gen-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": MODEL,
                "provider": "Fake",
                "error": {"code": code, "message": "Provider disconnected unexpectedly"},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            }
        )
    )
    return ScriptedReply(
        status=502,
        body=json.dumps({"error": {"code": 502, "message": "Provider returned error"}}).encode(),
        events=tuple(frames),
        events_with_usage=tuple(frames),
    )
