"""Parley's vendor-neutral history as the Messages API's `system` and `messages`.

A conversation may have started with another vendor, so `to_anthropic_messages` repairs
what the API would refuse: system text moved to the top-level `system`, tool results sent
as `tool_result` blocks of a user message, consecutive same-role messages merged, empty
text dropped, and a history cut by the context window mended (every `tool_use` answered in
the very next message, orphan results turned into text).

Thinking blocks travel in the assistant message's `VendorState("anthropic", ...)` (the
provider's own key: "@<name>" for a provider of the providers file):
`blocks` (each `thinking` or `redacted_thinking` block exactly as the API sent it), `model`
(signatures are bound to the model that made them) and, only when a block came after text
or a tool call, `layout` (the order of the response's content). They go back unchanged,
first in the message, or in their original order when `layout` still fits the message.
Another vendor's state is ignored, and so are blocks made by another model.

Only the turn in progress (the assistant messages after the last user message: a tool
loop) gets its blocks back. The API requires them there, and needs none from finished
turns; sending those would be worse than useless, because models with preserved thinking
check each block against everything before it (`system`, `tools`, earlier messages), and
Parley's system prompt carries the time, the window drops old messages and a channel's
tools change. Within one turn none of that moves.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from bot.domain import ChatMessage, ImagePart, Role
from bot.llm.base import ToolSpec

THINKING_TYPES = frozenset(("thinking", "redacted_thinking"))
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_EMPTY_HISTORY = "(earlier conversation omitted)"


def _tool_id(call_id: str) -> str:
    """Tool use ids must match ^[a-zA-Z0-9_-]+$; other vendors' ids may not."""
    return _ID_UNSAFE.sub("_", call_id) or "toolu_missing"


def _leading_thinking(blocks: list[dict[str, Any]]) -> int:
    count = 0
    for block in blocks:
        if block.get("type") not in THINKING_TYPES:
            break
        count += 1
    return count


def _is_thinking_block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "thinking":
        return isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)
    return kind == "redacted_thinking" and isinstance(block.get("data"), str)


def _thinking_of(message: ChatMessage, model: str, vendor: str) -> tuple[list[dict[str, Any]], Any]:
    """The message's own thinking blocks (and layout) that `model` may be sent."""
    state = message.vendor_state
    if state is None or state.vendor != vendor:
        return [], None
    made_by = state.data.get("model")
    if model and made_by and made_by != model:
        return [], None  # another model cannot read these signatures
    raw = state.data.get("blocks")
    if not isinstance(raw, list) or not all(_is_thinking_block(b) for b in raw):
        return [], None
    return raw, state.data.get("layout")


def _in_layout(
    layout: Any,
    thinking: list[dict[str, Any]],
    content: str,
    tool_uses: list[dict[str, Any]],
) -> list[dict[str, Any]] | None:
    """The response's content in its original order, or None if the layout does not fit
    the stored message (then the blocks simply go first)."""
    if not isinstance(layout, list):
        return None
    out: list[dict[str, Any]] = []
    used_thinking = used_calls = text_end = 0
    try:
        for kind, *where in layout:
            # Blocks and calls are each referred to once, in order: anything else is not
            # a layout this module wrote.
            if kind == "thinking" and where == [used_thinking]:
                out.append(thinking[used_thinking])
                used_thinking += 1
            elif kind == "tool_use" and where == [used_calls]:
                out.append(tool_uses[used_calls])
                used_calls += 1
            elif kind == "text":
                start, end = where
                if start != text_end or not isinstance(end, int) or end <= start:
                    return None
                out.append({"type": "text", "text": content[start:end]})
                text_end = end
            else:
                return None
    except (IndexError, TypeError, ValueError):
        return None
    if (used_thinking, used_calls, text_end) != (len(thinking), len(tool_uses), len(content)):
        return None
    return out


def _assistant_blocks(
    message: ChatMessage, model: str, pending: set[str], replay: bool, vendor: str
) -> list[dict[str, Any]]:
    tool_uses: list[dict[str, Any]] = []
    for call in message.tool_calls:
        call_id = _tool_id(call.id)
        pending.add(call_id)
        tool_uses.append(
            {
                "type": "tool_use",
                "id": call_id,
                "name": call.name,
                "input": call.arguments if call.arguments is not None else {},
            }
        )
    thinking, layout = _thinking_of(message, model, vendor) if replay else ([], None)
    ordered = _in_layout(layout, thinking, message.content, tool_uses) if layout else None
    if ordered is None:
        text = [{"type": "text", "text": message.content}] if message.content else []
        ordered = [*thinking, *text, *tool_uses]
    # "The final block in an assistant message cannot be `thinking`" (a 400): thinking that
    # led to nothing (cut by max_tokens, or an empty answer) stays out.
    while ordered and ordered[-1]["type"] in THINKING_TYPES:
        ordered.pop()
    return ordered


def to_anthropic_messages(
    messages: Sequence[ChatMessage], *, model: str = "", vendor: str = "anthropic"
) -> tuple[str, list[dict[str, Any]]]:
    """Vendor-neutral messages to (`system`, `messages`) of a Messages API request.

    `model` is the model the request goes to: thinking blocks another model made are
    left out (empty: every block of the turn in progress is sent). `vendor` is the key
    the provider stores its state under (`VendorState.vendor`): state under another key
    is another provider's, and left out."""
    system: list[str] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    pending: set[str] = set()  # tool_use ids of the last assistant turn still unanswered

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not (turns and turns[-1][0] == role):
            turns.append((role, blocks))
            return
        merged = turns[-1][1]
        lead = _leading_thinking(blocks) if role == "assistant" else 0
        if lead:  # the merged turn must still start with its thinking blocks
            at = _leading_thinking(merged)
            merged[at:at] = blocks[:lead]
        merged.extend(blocks[lead:])

    def close_pending() -> None:
        # A tool_use without its result in the next message is a 400: answer it.
        if pending:
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": "No result was recorded for this call.",
                        "is_error": True,
                    }
                    for call_id in sorted(pending)
                ],
            )
            pending.clear()

    turn_starts = len(messages) - 1  # the last user message: the turn in progress follows
    while turn_starts >= 0 and messages[turn_starts].role is not Role.USER:
        turn_starts -= 1
    for number, message in enumerate(messages):
        if message.role is Role.SYSTEM:
            if message.content:
                system.append(message.content)
        elif message.role is Role.TOOL:
            call_id = _tool_id(message.tool_call_id)
            if call_id in pending:
                pending.discard(call_id)
                block: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": message.content or "(empty result)",
                }
                if message.is_error:
                    block["is_error"] = True
                add("user", [block])
            else:  # its tool_use was cut from the window: keep the information as text
                shown = message.content or "(empty result)"
                add("user", [{"type": "text", "text": f"[result of {message.name}]: {shown}"}])
        elif message.role is Role.ASSISTANT:
            close_pending()
            if message.tool_calls or (message.vendor_state and number > turn_starts):
                blocks = _assistant_blocks(message, model, pending, number > turn_starts, vendor)
            else:  # the common case, kept cheap: a plain answer
                blocks = [{"type": "text", "text": message.content}] if message.content else []
            if blocks:
                add("assistant", blocks)
        else:
            close_pending()
            # Pictures first: Anthropic's vision guide finds answers better that way.
            blocks = [_image_block(image) for image in message.images]
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            if blocks:
                add("user", blocks)
    close_pending()
    if turns and turns[0][0] != "user":
        turns.insert(0, ("user", [{"type": "text", "text": _EMPTY_HISTORY}]))
    return "\n\n".join(system), [{"role": role, "content": blocks} for role, blocks in turns]


def _image_block(image: ImagePart) -> dict[str, Any]:
    data = base64.b64encode(image.data).decode("ascii")
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": image.media_type, "data": data},
    }


def open_loop(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The assistant messages of the tool loop this request continues (it ends with tool
    results), oldest first; empty for a request that starts a turn.

    To the API a tool loop is one assistant turn: everything after the last user message
    that is not tool results. Its first message decides the loop's thinking."""
    last = messages[-1] if messages else None
    if last is None or last["role"] != "user" or not _has_results(last):
        return []
    start = len(messages)
    while start > 0 and not (
        messages[start - 1]["role"] == "user" and not _has_results(messages[start - 1])
    ):
        start -= 1
    return [m for m in messages[start:] if m["role"] == "assistant"]


def _has_results(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "tool_result" for b in message["content"])


def loop_lacks_thinking(messages: list[dict[str, Any]]) -> bool:
    """True when the request continues a tool loop that did not begin with a thinking
    block (another vendor or model made it, or thinking was off): the API refuses a
    thinking request that continues it."""
    loop = open_loop(messages)
    return bool(loop) and loop[0]["content"][0].get("type") not in THINKING_TYPES


def drop_loop_thinking(messages: list[dict[str, Any]]) -> None:
    """Remove thinking blocks from the open tool loop, which goes on without thinking:
    the API refuses thinking blocks in a turn made without it."""
    for message in open_loop(messages):
        message["content"] = [b for b in message["content"] if b.get("type") not in THINKING_TYPES]


def to_anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in tools
    ]
