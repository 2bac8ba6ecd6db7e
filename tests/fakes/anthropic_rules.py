"""What the Messages API refuses, for `ScriptedAnthropicServer`: `validate_request` says
why a request body would get a 400 (the API's own wording where it is known, from its
documentation and its users' bug reports), and `Signer` makes and checks the signatures
of the thinking the server sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

__all__ = ["Signer", "prefix_digest", "validate_request"]

_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


def prefix_digest(payload: dict[str, Any], upto: int) -> str:
    """What a block made in answer to `messages[:upto]` was reasoned from: `system`, `tools`
    and those messages (the prefix that models with preserved thinking check)."""
    prefix = [payload.get("system"), payload.get("tools"), payload["messages"][:upto]]
    canonical = json.dumps(prefix, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Signer:
    """Signs thinking the way only this server can check: an HMAC over model and block,
    and over the block's prefix (`prefix_digest`) when the server checks prefixes."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).digest()

    def signature(self, model: str, thinking: str, prefix: str = "") -> str:
        return base64.b64encode(self._mac("thinking", model, prefix, thinking)).decode()

    def redacted_data(self, model: str, prefix: str = "") -> str:
        nonce = secrets.token_hex(8)
        mac = self._mac("redacted", model, prefix, nonce)
        return base64.b64encode(nonce.encode() + mac).decode()

    def valid(self, model: str, block: dict[str, Any], prefix: str = "") -> bool:
        if block.get("type") == "thinking":
            expected = self.signature(model, str(block.get("thinking")), prefix)
            return hmac.compare_digest(expected, str(block.get("signature")))
        try:
            raw = base64.b64decode(str(block.get("data")), validate=True)
        except ValueError:
            return False
        nonce, mac = raw[:16].decode(errors="replace"), raw[16:]
        return hmac.compare_digest(mac, self._mac("redacted", model, prefix, nonce))


def _final_turn(
    messages: list[tuple[str, list[dict[str, Any]]]],
) -> list[tuple[int, list[dict[str, Any]]]]:
    """(index, blocks) of the assistant messages after the last user message that is not
    tool results: the assistant turn the request continues (a tool loop is one turn)."""
    start = len(messages)
    while start > 0:
        role, blocks = messages[start - 1]
        if role == "user" and not any(b.get("type") == "tool_result" for b in blocks):
            break
        start -= 1
    return [
        (n, messages[n][1]) for n in range(start, len(messages)) if messages[n][0] == "assistant"
    ]


def _thinking_problem(
    payload: dict[str, Any],
    messages: list[tuple[str, list[dict[str, Any]]]],
    thinks_by_default: bool,
) -> str | None:
    """What the API refuses about thinking: its parameters, and one thinking configuration
    per assistant turn (a tool loop included)."""
    thinking = payload.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    turn = _final_turn(messages)
    if kind not in ("enabled", "adaptive"):
        if kind is None and thinks_by_default:
            return None
        for number, blocks in turn:
            for position, block in enumerate(blocks):
                if block.get("type") in _THINKING_BLOCKS:
                    return (
                        f"messages.{number}.content.{position}: When thinking is disabled, an "
                        "`assistant` message in the final position cannot contain `thinking`. "
                        "To use thinking blocks, enable `thinking` in your request."
                    )
        return None
    assert isinstance(thinking, dict)
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int):
            return "thinking.enabled.budget_tokens: Field required"
        if budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if payload["max_tokens"] <= budget:
            return (
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {_THINKING_DOCS}#max-tokens-and-context-window-size"
            )
        choice = payload.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            return "Thinking may not be enabled when tool_choice forces tool use."
    if payload.get("temperature") not in (None, 1):
        return (
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}"
            "#important-considerations-when-using-extended-thinking"
        )
    # The turn the request continues must start with its thinking. Stricter than the API
    # for adaptive thinking, which may skip thinking: Parley must not rely on that.
    if turn:
        number, blocks = turn[0]
        found = blocks[0].get("type")
        if found not in _THINKING_BLOCKS:
            return (
                f"messages.{number}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                f"but found `{found}`. When `thinking` is enabled, a final `assistant` message "
                "must start with a thinking block (preceeding the lastmost set of `tool_use` and "
                "`tool_result` blocks). We recommend you include thinking blocks from previous "
                "turns. To avoid this requirement, disable `thinking`. Please consult our "
                f"documentation at {_THINKING_DOCS}"
            )
    return None


_THINKING_BLOCKS = ("thinking", "redacted_thinking")


def validate_request(
    payload: Any,
    signer: Signer | None = None,
    *,
    thinks_by_default: bool = False,
    checks_prefix: bool = False,
) -> str | None:
    """Why the Messages API would reject this request body with a 400, or None.

    Checked: model and max_tokens present; messages non-empty, starting with a user turn
    and alternating user/assistant (no system or tool role); blocks are text (non-empty),
    tool_use, tool_result, or (assistant only) thinking/redacted_thinking, never the last
    block of a message; every tool_use id is answered by a tool_result in the very next
    (user) message, and every tool_result answers a tool_use of the message before; no
    tool_use id appears twice in the request; tools
    have name, input_schema of type object and a valid name. With `signer`, every thinking
    block must carry the signature it was sent with, for this model. With thinking enabled
    or adaptive: budget_tokens at least 1024 and below max_tokens, no forced tool_choice
    (manual thinking), temperature unset or 1, and the turn the request continues (a tool
    loop) starting with a thinking block. Without thinking, that turn holds no thinking
    block, unless `thinks_by_default` (a model that thinks when `thinking` is absent).
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
    model = str(payload["model"])
    contents: list[tuple[str, list[dict[str, Any]]]] = []
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
        contents.append((role, blocks))
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
            elif kind in _THINKING_BLOCKS:
                if role != "assistant":
                    return (
                        f"messages.{number}.content.{position}: {kind} only in assistant messages"
                    )
                prefix = prefix_digest(payload, number) if checks_prefix else ""
                if signer is not None and not signer.valid(model, block, prefix):
                    field = "signature" if kind == "thinking" else "data"
                    return (
                        f"messages.{number}.content.{position}: Invalid `{field}` in `{kind}` block"
                    )
            elif kind == "image":
                problem = _image_problem(block, role, f"messages.{number}.content.{position}")
                if problem:
                    return problem
            elif kind not in ("text", "tool_use", "tool_result"):
                return f"messages.{number}: unsupported block type {kind!r}"
        if role == "assistant" and blocks[-1].get("type") == "thinking":
            return (
                f"messages.{number}: The final block in an assistant message cannot be `thinking`."
            )
        expected = "assistant" if role == "user" else "user"
    for number, tool in enumerate(payload.get("tools") or []):
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{number}.input_schema: must be an object schema"
        if not tool.get("name"):
            return f"tools.{number}.name: Field required"
    return _thinking_problem(payload, contents, thinks_by_default)


# -- Image blocks (platform.claude.com vision guide; error texts as the API's users quote
# them): base64 sources of JPEG, PNG, GIF or WebP, at most 5 MB of base64 each, whose
# bytes are what the media type says; in user messages only.

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64 = 5 * 1024 * 1024


def _actual_type(raw: bytes) -> str | None:
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_problem(block: dict[str, Any], role: str, where: str) -> str | None:
    if role != "user":
        return f"{where}: image content blocks are only allowed in user messages"
    source = block.get("source")
    if not isinstance(source, dict):
        return f"{where}.image.source: Field required"
    if source.get("type") == "url":
        return (
            None
            if isinstance(source.get("url"), str)
            else f"{where}.image.source.url: Field required"
        )
    if source.get("type") != "base64":
        return f"{where}.image.source.type: Input should be 'base64', 'url' or 'file'"
    media_type = source.get("media_type")
    if media_type not in IMAGE_TYPES:
        return (
            f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', "
            "'image/png', 'image/gif' or 'image/webp'"
        )
    data = source.get("data")
    if not isinstance(data, str):
        return f"{where}.image.source.base64.data: Field required"
    if len(data) > MAX_IMAGE_BASE64:
        return (
            f"{where}.image.source.base64: image exceeds 5 MB maximum: {len(data)} bytes > "
            f"{MAX_IMAGE_BASE64} bytes"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        return f"{where}.image.source.base64.data: Could not process image"
    actual = _actual_type(raw)
    if actual is None:
        return f"{where}.image.source.base64.data: Could not process image"
    if actual != media_type:
        return (
            f"{where}.image.source.base64.data: The image was specified using the {media_type} "
            f"media type, but the image appears to be a {actual} image"
        )
    return None
