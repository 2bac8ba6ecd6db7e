"""Edits of scripted replies (either scripted server) for the shapes a tool loop must
survive, and the Chat Completions rules a replayed history must keep.

- `with_call_ids(reply, *ids)`: the calls carry these ids, not fresh ones: one id twice,
  as some compatible servers send, or an empty one.
- `without_terminator(reply)` / `anthropic_without_terminator(reply)`: the stream ends
  cleanly before its end: no finish reason, usage or `[DONE]`; no `message_delta` or
  `message_stop` (a proxy or server that closed early). What came before is sent, text
  or tool call fragments alike.
- `chat_completions_problem(request)`: why Chat Completions would refuse the request's
  history, in OpenAI's words, or None.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tests.fakes.openai_server import ScriptedReply

__all__ = [
    "anthropic_without_terminator",
    "chat_completions_problem",
    "with_call_ids",
    "without_terminator",
]

# The placeholder both scripted servers replace with a fresh id per call when serving.
_CALL = "@@CALL_{}@@"
_DONE = b"data: [DONE]\n\n"


def with_call_ids(reply: ScriptedReply, *ids: str) -> ScriptedReply:
    """`reply` (a tool call reply, of either scripted server) with its calls' ids fixed
    to `ids`, in order, instead of fresh ones: e.g. two calls with one id, as some
    compatible servers send, or an empty id."""
    if len(ids) != reply.call_count:
        raise ValueError(f"the reply has {reply.call_count} calls, {len(ids)} ids given")

    def fixed(data: bytes) -> bytes:
        for index, call_id in enumerate(ids):
            data = data.replace(_CALL.format(index).encode(), call_id.encode())
        return data

    return dataclasses.replace(
        reply,
        body=fixed(reply.body),
        events=None if reply.events is None else tuple(fixed(e) for e in reply.events),
        events_with_usage=None
        if reply.events_with_usage is None
        else tuple(fixed(e) for e in reply.events_with_usage),
        call_count=0,
    )


def _terminates(frame: bytes) -> bool:
    """Whether an SSE frame is part of how a Chat Completions stream ends: `[DONE]`,
    a chunk with a finish reason, or the usage-only chunk."""
    if frame == _DONE:
        return True
    if frame.startswith(b":"):  # an SSE comment (OpenRouter's keep-alive)
        return False
    chunk = json.loads(frame.removeprefix(b"data: "))
    choices = chunk.get("choices")
    return not choices or any(choice.get("finish_reason") for choice in choices)


def without_terminator(reply: ScriptedReply) -> ScriptedReply:
    """`reply`'s stream cut off cleanly before it ends: no finish reason, no usage chunk,
    no `[DONE]` (a proxy or server that closes the stream early). Whatever came before
    (text, tool call fragments) is sent. A plain request gets the reply unchanged."""
    if reply.events is None or reply.events_with_usage is None:
        raise ValueError("only a streamed reply can be cut off")
    return dataclasses.replace(
        reply,
        events=tuple(e for e in reply.events if not _terminates(e)),
        events_with_usage=tuple(e for e in reply.events_with_usage if not _terminates(e)),
    )


def chat_completions_problem(payload: dict[str, Any], vendor: str = "openai") -> str | None:
    """Why Chat Completions would refuse this request's history with a 400, or None.

    Checked (OpenAI's own error texts; DashScope and DeepSeek enforce the same pairing):
    each assistant message's `tool_calls` answered by tool messages right after it, every
    tool message answering a call of that assistant message, call ids of at most 40
    characters (OpenAI's limit: `vendor` "openai" only; vLLM issues 46), and arguments
    that are JSON.
    """
    messages = payload.get("messages") or []
    open_ids: list[str] = []
    for number, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return (
                    f"Invalid parameter: messages[{number}]: messages with role 'tool' must be "
                    "a response to a preceeding message with 'tool_calls'."
                )
            open_ids.remove(message["tool_call_id"])
            continue
        if open_ids:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_ids)}"
            )
        for index, call in enumerate(message.get("tool_calls") or []):
            call_id = str(call.get("id") or "")
            if vendor == "openai" and len(call_id) > 40:
                return (
                    f"Invalid 'messages[{number}].tool_calls[{index}].id': string too long. "
                    f"Expected a string with maximum length 40, but got a string with length "
                    f"{len(call_id)} instead."
                )
            try:
                json.loads((call.get("function") or {}).get("arguments") or "")
            except ValueError:
                return f"messages[{number}].tool_calls[{index}].function.arguments: invalid JSON"
            open_ids.append(call_id)
    if open_ids:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages "
            f"responding to each 'tool_call_id': {', '.join(open_ids)}"
        )
    return None


def anthropic_without_terminator(reply: ScriptedReply) -> ScriptedReply:
    """`reply`'s stream cut off cleanly before `message_delta` and `message_stop`: the
    content blocks that came before are sent, the stop reason and the end never are."""
    if reply.events is None:
        raise ValueError("only a streamed reply can be cut off")
    kept = tuple(
        e
        for e in reply.events
        if not e.startswith((b"event: message_delta", b"event: message_stop"))
    )
    return dataclasses.replace(reply, events=kept, events_with_usage=kept)
