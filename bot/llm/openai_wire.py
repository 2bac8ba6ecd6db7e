"""The Chat Completions wire shapes: vendor-neutral history and tools in, usage and
finish reasons out. Shared by every OpenAI-compatible vendor; `OpenAICompatProvider`
(bot/llm/openai_compat.py) adds what each vendor's profile asks for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
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
    vendor: str = "",
    signatures: bool = False,
) -> list[dict[str, Any]]:
    """Convert vendor-neutral messages to Chat Completions `messages`.

    `replay` names the field that carries a tool round's reasoning back (DeepSeek's
    `reasoning_content`): every assistant message with tool calls gets it, from its
    `vendor_state` when `vendor` wrote that state, else empty (a round another vendor
    made, or one from before thinking: DeepSeek refuses the message without the field
    and accepts it empty). `signatures` (Gemini) puts each call's thought signature back
    on that call, and the fallback on a first call that has none. State another vendor
    wrote is never sent."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message.role is Role.TOOL:
            converted.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
        elif message.role is Role.ASSISTANT and message.tool_calls:
            calls = [_call_to_openai(call) for call in message.tool_calls]
            if signatures:
                _sign(calls, message.vendor_state, vendor)
            entry = {"role": "assistant", "content": message.content or None, "tool_calls": calls}
            if replay:
                state = message.vendor_state
                kept = state.data.get(replay) if state and state.vendor == vendor else None
                entry[replay] = kept if isinstance(kept, str) else ""
            converted.append(entry)
        elif message.images:
            converted.append({"role": "user", "content": _content_parts(message)})
        else:
            converted.append({"role": message.role.value, "content": message.content})
    return converted


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


def _call_to_openai(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
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
