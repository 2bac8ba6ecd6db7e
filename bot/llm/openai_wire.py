"""The Chat Completions wire shapes: vendor-neutral history and tools in, usage and
finish reasons out. Shared by every OpenAI-compatible vendor; `OpenAICompatProvider`
(bot/llm/openai_compat.py) adds what each vendor's profile asks for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
from collections.abc import Callable, Sequence
from typing import Any

from bot.domain import ChatMessage, ImagePart, Role, ToolCall, Usage, VendorState
from bot.llm.base import COMPLETE, FAILED, FILTERED, LENGTH, REFUSED, ToolSpec

# Google's documented value for a call Gemini did not sign (a history from another
# vendor, or from before): it turns the signature check off for that call.
SKIP_SIGNATURE = "skip_thought_signature_validator"


def to_openai_messages(
    messages: Sequence[ChatMessage],
    *,
    replay: str = "",
    required: bool = False,
    vendor: str = "",
    signatures: bool = False,
    details: bool = False,
    think: bool = False,
    ids: str = "",
) -> list[dict[str, Any]]:
    """Convert vendor-neutral messages to Chat Completions `messages`.

    `replay` names the field that carries a tool round's reasoning back (DeepSeek's and
    Kimi's `reasoning_content`; "*": whichever field the state holds), from its
    `vendor_state` when `vendor` wrote that state; `required`: every assistant message
    with tool calls gets the field, empty when there is none (a round another vendor
    made, or one from before thinking: DeepSeek and Kimi refuse the message without it
    and accept it empty). `signatures` (Gemini) puts each call's thought signature back
    on that call, and the fallback on a first call that has none. `details` (OpenRouter)
    puts a tool round's `reasoning_details` back unchanged; `think` (MiniMax) puts the
    <think> block back in front of the content. `ids` maps tool-call ids to the shape
    the vendor enforces ("alnum9": Mistral), the same way for a call and its result.
    State another vendor wrote is never sent."""
    converted: list[dict[str, Any]] = []
    mapped = _ID_SHAPES.get(ids)
    for message in messages:
        if message.role is Role.TOOL:
            call_id = message.tool_call_id
            if mapped is not None and call_id is not None:
                call_id = mapped(call_id)
            converted.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
            continue
        state = message.vendor_state
        own = state.data if state is not None and state.vendor == vendor else None
        if state is None and not message.tool_calls and not message.images:
            converted.append({"role": message.role.value, "content": message.content})
        elif message.role is Role.ASSISTANT and message.tool_calls:
            calls = [_call_to_openai(call, mapped) for call in message.tool_calls]
            if signatures:
                _sign(calls, state, vendor)
            content = message.content
            if think and own is not None and isinstance(own.get("think"), str):
                content = _with_think(own["think"], content)
            entry = {"role": "assistant", "content": content or None, "tool_calls": calls}
            if replay:
                _replay(entry, own, replay, required)
            if details and own is not None and isinstance(own.get("reasoning_details"), list):
                entry["reasoning_details"] = own["reasoning_details"]
            converted.append(entry)
        elif message.images:
            converted.append({"role": "user", "content": _content_parts(message)})
        elif think and own is not None and isinstance(own.get("think"), str):
            converted.append(
                {"role": "assistant", "content": _with_think(own["think"], message.content)}
            )
        else:
            converted.append({"role": message.role.value, "content": message.content})
    return converted


def _replay(entry: dict[str, Any], own: dict[str, Any] | None, field: str, required: bool) -> None:
    if field == "*":
        for name in ("reasoning_content", "reasoning"):
            if own is not None and isinstance(own.get(name), str):
                entry[name] = own[name]
                return
        return
    kept = own.get(field) if own is not None else None
    if isinstance(kept, str):
        entry[field] = kept
    elif required:
        entry[field] = ""


def _with_think(block: str, content: str) -> str:
    return f"{block}\n\n{content}" if content else block


def alnum9(call_id: str) -> str:
    """Mistral's shape: nine letters and digits. An id already in it is kept; any other
    maps to the same nine characters every time (a call and its result stay paired)."""
    if len(call_id) == 9 and call_id.isascii() and call_id.isalnum():
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    letters = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        letters.append(_ALNUM[digit])
    return "".join(letters)


def max40(call_id: str) -> str:
    """OpenAI's limit: at most 40 characters. A longer id (another vendor's: vLLM's are
    46) maps to the same shorter one every time."""
    if len(call_id) <= 40:
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[:24]


_ALNUM = string.ascii_letters + string.digits
_ID_SHAPES = {"alnum9": alnum9, "max40": max40}


def _content_parts(message: ChatMessage) -> list[dict[str, Any]]:
    """A user message with pictures as content parts: its text, then each picture as an
    `image_url` part holding a base64 data URL (the form every compatible vendor takes;
    DashScope's Qwen-VL and vLLM as well as OpenAI)."""
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    parts.extend(
        {"type": "image_url", "image_url": {"url": data_url(image)}} for image in message.images
    )
    return parts


def data_url(image: ImagePart) -> str:
    return f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"


def _sign(calls: list[dict[str, Any]], state: VendorState | None, vendor: str) -> None:
    # Gemini signs the first call of a parallel set only; it checks the first call of
    # every step of the current turn.
    kept = state.data.get("signatures") if state is not None and state.vendor == vendor else None
    kept = kept if isinstance(kept, dict) else {}
    for position, call in enumerate(calls):
        signature = kept.get(str(position))
        if not isinstance(signature, str) and position == 0:
            signature = SKIP_SIGNATURE
        if isinstance(signature, str):
            call["extra_content"] = {"google": {"thought_signature": signature}}


def _call_to_openai(call: ToolCall, mapped: Callable[[str], str] | None) -> dict[str, Any]:
    return {
        "id": call.id if mapped is None else mapped(call.id),
        "type": "function",
        "function": {"name": call.name, "arguments": _arguments_json(call)},
    }


def _arguments_json(call: ToolCall) -> str:
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    # Vendors reject a history whose tool call arguments are not valid JSON.
    try:
        json.loads(call.raw_arguments)
    except ValueError:
        return "{}"
    return call.raw_arguments


def to_openai_tools(tools: Sequence[ToolSpec], *, strict: bool = False) -> list[dict[str, Any]]:
    """Convert tool specs to Chat Completions `tools`; `strict` adds `"strict": true`."""
    converted = []
    for tool in tools:
        function: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        }
        if strict and tool.strict:
            function["strict"] = True
        converted.append({"type": "function", "function": function})
    return converted


def finish_reason(reason: str, has_calls: bool, refused: bool) -> str:
    if refused:
        return "refusal"
    if has_calls and reason in ("", "stop"):  # Ollama says "stop" after tool calls
        return "tool_calls"
    return reason or "stop"


# Every vendor's finish reasons as the neutral outcome (bot/llm/base.py). Sources: OpenAI's
# chat object reference; GLM's `sensitive` and `network_error` (docs.bigmodel.cn, chat
# completion response); DeepSeek's `insufficient_system_resource` (api-docs.deepseek.com,
# create chat completion); OpenRouter's `error` (openrouter.ai/docs, errors: mid-stream).
# A reason no vendor documents is read as a finished answer, as before.
OUTCOMES: dict[str, str] = {
    "length": LENGTH,
    "model_context_window_exceeded": LENGTH,
    "content_filter": FILTERED,
    "sensitive": FILTERED,
    "refusal": REFUSED,
    "error": FAILED,
    "network_error": FAILED,
    "insufficient_system_resource": FAILED,
}
# The failures the vendor describes as a passing condition of its service.
TRANSIENT = frozenset({"error", "network_error", "insufficient_system_resource"})


def outcome(reason: str) -> str:
    return OUTCOMES.get(reason, COMPLETE)


def usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
