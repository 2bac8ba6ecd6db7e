"""Tool calls assembled from what a Chat Completions stream actually sent.

OpenAI numbers every call of a round with `index` and sends its id and name once, then
argument fragments. Compatible servers differ, and the calls are built from what
arrived, never from `finish_reason`:

- Ollama sends each parallel call whole in its own chunk, all at `index` 0: a new
  non-empty id at an index already in use starts a new call.
- DashScope repeats `"id": ""` and `"function": {}` on later chunks: an empty id or
  name never overwrites a stored one.
- Some servers omit `index`: a new id starts a call, anything else continues the last.
- Ollama (and gateways in front of it) may send `arguments` as a JSON object rather
  than a string: it is encoded, never concatenated as text.

`ToolCallMarkup` covers the other way calls arrive: as text in the model's own
tool-call markup, when vLLM runs without a matching `--tool-call-parser` or a model
template on Ollama writes them out (docs/providers.md names the markup supported).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from bot.domain import ToolCall


def parse_tool_call(call_id: str, name: str, raw: str) -> ToolCall:
    """Build a `ToolCall` from streamed parts, recording (not raising) bad arguments."""
    call_id = call_id or f"call_{secrets.token_hex(12)}"
    if not raw.strip():
        return ToolCall(call_id, name, {}, raw_arguments=raw)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return ToolCall(call_id, name, None, raw, f"arguments are not valid JSON: {exc}")
    if not isinstance(value, dict):
        return ToolCall(
            call_id, name, None, raw, f"arguments must be a JSON object, not {type(value).__name__}"
        )
    return ToolCall(call_id, name, value, raw)


def arguments_text(arguments: Any) -> str:
    """A call's `arguments` as JSON text, whether the server sent a string or an object."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


class ToolCallAssembler:
    """Collects `delta.tool_calls` fragments into calls, in the order they started, and
    Gemini's thought signatures (`extra_content.google.thought_signature`) by position."""

    __slots__ = ("_calls", "_slots")

    def __init__(self) -> None:
        self._calls: list[list[Any]] = []  # [id, name, [argument fragments], signature]
        self._slots: dict[int, list[Any]] = {}  # index -> the call it currently names

    def __bool__(self) -> bool:
        return bool(self._calls)

    def feed(self, deltas: Any) -> None:
        for delta in deltas if isinstance(deltas, list) else ():
            if not isinstance(delta, dict):
                continue
            call_id = delta.get("id") or ""
            function = delta.get("function") or {}
            index = delta.get("index")
            if index is None:  # a new id starts a call, anything else continues the last
                entry = self._calls[-1] if self._calls else None
            else:
                entry = self._slots.get(index)
            # A delta with an id and a name opens a call (continuations carry neither, or an
            # empty id): a new id, or the same one again after arguments arrived (servers
            # that reuse ids, each call whole in its chunk at index 0), starts a new call.
            opens = bool(call_id and function.get("name"))
            if (
                entry is None
                or (call_id and entry[0] and call_id != entry[0])
                or (opens and entry[1] and entry[2])
            ):
                entry = [call_id, function.get("name") or "", [], ""]
                self._calls.append(entry)
                if index is not None:
                    self._slots[index] = entry
            else:
                if call_id and not entry[0]:
                    entry[0] = call_id
                if not entry[1] and function.get("name"):
                    entry[1] = function["name"]
            fragment = function.get("arguments")
            if fragment:
                entry[2].append(fragment if isinstance(fragment, str) else arguments_text(fragment))
            if "extra_content" in delta:
                entry[3] = thought_signature(delta) or entry[3]

    def calls(self) -> list[ToolCall]:
        return [parse_tool_call(c[0], c[1], "".join(c[2])) for c in self._calls]

    def signatures(self) -> dict[str, str]:
        """Thought signatures by call position ("0", "1", …), for the calls that had one."""
        return {str(n): c[3] for n, c in enumerate(self._calls) if c[3]}


def thought_signature(call: dict[str, Any]) -> str:
    """Gemini's `extra_content.google.thought_signature` of a tool call, or ""."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else ""


class ToolCallMarkup:
    """Takes `<tool_call>{"name": …, "arguments": …}</tool_call>` blocks out of streamed text.

    This is the Hermes format Qwen2.5/Qwen3, QwQ and Hermes models write (vLLM's `hermes`
    parser reads the same). `feed` returns the text to show, holding back anything that
    may be the start of a tag split across chunks; `calls` are the blocks found, each
    parsed like a streamed call. A block the stream never closed is still a call (with an
    arguments error the model will read), so nothing the model asked for is lost.
    """

    OPEN, CLOSE = "<tool_call>", "</tool_call>"
    _NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')

    def __init__(self) -> None:
        self._inside = False
        self._held = ""
        self._block: list[str] = []
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        out: list[str] = []
        while text:
            tag = self.CLOSE if self._inside else self.OPEN
            found = text.find(tag)
            if found >= 0:
                if self._inside:
                    self._block.append(text[:found])
                    self._finish("".join(self._block))
                    self._block = []
                else:
                    out.append(text[:found])
                text = text[found + len(tag) :]
                self._inside = not self._inside
                continue
            keep = next((n for n in range(len(tag) - 1, 0, -1) if text.endswith(tag[:n])), 0)
            (self._block if self._inside else out).append(text[: len(text) - keep])
            self._held = text[len(text) - keep :]
            break
        return "".join(out)

    def flush(self) -> str:
        """The text held back at the end; an unclosed block becomes a call."""
        held, self._held = self._held, ""
        if not self._inside:
            return held
        self._inside = False
        raw = "".join(self._block) + held
        self._block = []
        found = self._NAME.search(raw)
        self.calls.append(
            ToolCall(
                f"call_{secrets.token_hex(12)}",
                found.group(1) if found else "",
                None,
                raw,
                "the tool call markup was not closed (the answer was cut short)",
            )
        )
        return ""

    def _finish(self, block: str) -> None:
        try:
            value = json.loads(block)
        except ValueError as exc:
            found = self._NAME.search(block)
            self.calls.append(
                ToolCall(
                    f"call_{secrets.token_hex(12)}",
                    found.group(1) if found else "",
                    None,
                    block.strip(),
                    f"the tool call markup is not valid JSON: {exc}",
                )
            )
            return
        if not isinstance(value, dict):
            value = {}
        arguments = value.get("arguments", value.get("parameters"))
        self.calls.append(
            parse_tool_call("", str(value.get("name") or ""), arguments_text(arguments))
        )
