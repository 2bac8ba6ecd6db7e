"""How an MCP call reads to people (its approval card) and to the model (its result)."""

from __future__ import annotations

import json
from typing import Any

import mcp_types

from bot.toolkit import N_, ApprovalCard, argument_lines


def mcp_card(server: str, tool: str, arguments: dict[str, Any]) -> ApprovalCard:
    """An MCP call as people read it: which server, which of its tools, which arguments."""
    return ApprovalCard(
        N_("Use a tool of an MCP server"),
        lines=((N_("Server"), server), (N_("Tool"), tool)),
        details=argument_lines(arguments),
    )


MAX_STRUCTURED_CHARS = 8000  # of a result's structured content shown to the model


def render_result(result: mcp_types.CallToolResult) -> str:
    """Text blocks joined, other blocks named, and the structured content as JSON after
    them (bounded; left out when the text already is that JSON)."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource: {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[link: {block.uri}]")
    text = "\n".join(part for part in parts if part)
    if result.structured_content is None or _is_json_of(text, result.structured_content):
        return text
    structured = json.dumps(result.structured_content, ensure_ascii=False)
    if len(structured) > MAX_STRUCTURED_CHARS:
        cut = len(structured) - MAX_STRUCTURED_CHARS
        structured = f"{structured[:MAX_STRUCTURED_CHARS]}… [cut: {cut} more characters]"
    if not text:
        return structured
    return f"{text}\n\nStructured content (JSON):\n{structured}"


def _is_json_of(text: str, value: Any) -> bool:
    """Whether `text` already says `value`: its JSON, or (a wrapped plain result, as
    `{"result": ...}`) the one value of a one-key object."""
    if isinstance(value, dict) and len(value) == 1:
        [inner] = value.values()
        if inner == text or (not isinstance(inner, str) and _is_json_of(text, inner)):
            return True
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False
