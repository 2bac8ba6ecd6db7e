"""`Provider` for Anthropic's Messages API, through the official `anthropic` SDK.

Parley's history is vendor-neutral (`ChatMessage`s with OpenAI-like roles), so a
conversation may have started with another vendor. `to_anthropic_messages` turns it
into what the Messages API accepts: system text moved to the top-level `system`, tool
results sent as `tool_result` blocks of a user message, consecutive same-role messages
merged, empty text dropped, and a history cut by the context window repaired (every
`tool_use` answered in the very next message, orphan results turned into text).

As in `openai_compat`, the SDK supplies configuration, authentication, retries and HTTP
error mapping, while the stream is read as raw SSE lines decoded with `json.loads`
(`messages.stream()` builds a pydantic event and a full message snapshot per chunk).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic
import httpx2

from bot.config import LLMSettings
from bot.domain import ChatMessage, Role, ToolCall, Usage
from bot.errors import (
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.llm.base import (
    REFUSED_TEXT,
    StreamEvent,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.llm.errors import ErrorMapper
from bot.llm.openai_compat import parse_tool_call

DEFAULT_MAX_TOKENS = 4096
_RAW_STREAM_HEADER = {"X-Stainless-Raw-Response": "stream"}
_CONTEXT_HINTS = ("prompt is too long", "context window", "too many total text bytes")
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
# Anthropic's stop reasons in the engine's (OpenAI's) vocabulary.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "refusal",
}
_EMPTY_HISTORY = "(earlier conversation omitted)"


def _tool_id(call_id: str) -> str:
    """Tool use ids must match ^[a-zA-Z0-9_-]+$; other vendors' ids may not."""
    return _ID_UNSAFE.sub("_", call_id) or "toolu_missing"


def to_anthropic_messages(
    messages: Sequence[ChatMessage],
) -> tuple[str, list[dict[str, Any]]]:
    """Vendor-neutral messages to (`system`, `messages`) of a Messages API request."""
    system: list[str] = []
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    pending: set[str] = set()  # tool_use ids of the last assistant turn still unanswered

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))

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

    for message in messages:
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
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                call_id = _tool_id(call.id)
                pending.add(call_id)
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": call.name,
                        "input": call.arguments if call.arguments is not None else {},
                    }
                )
            if blocks:
                add("assistant", blocks)
        else:
            close_pending()
            if message.content:
                add("user", [{"type": "text", "text": message.content}])
    close_pending()
    if turns and turns[0][0] != "user":
        turns.insert(0, ("user", [{"type": "text", "text": _EMPTY_HISTORY}]))
    return "\n\n".join(system), [{"role": role, "content": blocks} for role, blocks in turns]


def to_anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in tools
    ]


class AnthropicProvider:
    """One Claude model behind the Messages API (`/v1/messages`)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str,
        base_url: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        stream: bool = True,
        temperature: float | None = None,
        max_tokens: int | None = None,
        parallel_tool_calls: bool | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key or ""
        self._stream = stream
        self._temperature = temperature
        self._max_tokens = max_tokens or DEFAULT_MAX_TOKENS
        self._parallel_tool_calls = parallel_tool_calls
        self._extra_body = dict(extra_body or {})
        self._client = anthropic.AsyncAnthropic(
            api_key=self._api_key,
            base_url=base_url or None,
            timeout=httpx2.Timeout(timeout, connect=connect_timeout),
            max_retries=max_retries,
        )
        self.base_url = str(self._client.base_url).rstrip("/")
        self._errors = ErrorMapper(self.base_url, self._api_key, model, timeout, max_retries)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> AnthropicProvider:
        key = settings.anthropic_api_key
        return cls(
            api_key=key.get_secret_value() if key else None,
            model=settings.model,
            base_url=settings.anthropic_base_url,
            timeout=settings.timeout_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            max_retries=settings.max_retries,
            stream=settings.stream,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            parallel_tool_calls=settings.parallel_tool_calls,
            extra_body=settings.extra_body,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> AsyncIterator[StreamEvent]:
        """One model call: `TextDelta`s, at most one `ToolCallsReady`, one `TurnFinished`.

        `model` overrides the configured model for this call (a channel's own model)."""
        request = self.build_request(messages, tools)
        if model:
            request["model"] = model
        return self._stream_sse(request) if self._stream else self._complete(request)

    def build_request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> dict[str, Any]:
        """The JSON body of a `/v1/messages` request (without `stream`)."""
        system, converted = to_anthropic_messages(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self._max_tokens,
            "messages": converted,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = to_anthropic_tools(tools)
            if self._parallel_tool_calls is False:
                request["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        if self._temperature is not None:
            request["temperature"] = min(self._temperature, 1.0)  # Anthropic's range is 0..1
        if self._extra_body:
            request.update(self._extra_body)
        return request

    async def _stream_sse(self, request: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        request["stream"] = True
        loads = json.loads
        model = ""
        stop_reason = ""
        input_tokens = output_tokens = 0
        said = False
        blocks: dict[int, list[Any]] = {}  # index -> [id, name, [json fragments], start input]
        try:
            response = await self._client.post(
                "/v1/messages",
                body=request,
                cast_to=httpx2.Response,
                options={"headers": _RAW_STREAM_HEADER},
            )
            try:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # "event:" names repeat the data's "type"
                    try:
                        event = loads(line[5:])
                    except ValueError as exc:
                        raise ProviderUnavailable(
                            f"{self.base_url} sent an event that is not JSON ({exc}): "
                            f"{line[:200]!r}"
                        ) from None
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        delta_type = delta.get("type")
                        if delta_type == "text_delta":
                            if delta.get("text"):
                                said = True
                                yield TextDelta(delta["text"])
                        elif delta_type == "input_json_delta":
                            block = blocks.get(event.get("index", -1))
                            if block is not None and delta.get("partial_json"):
                                block[2].append(delta["partial_json"])
                        # thinking_delta, signature_delta, citations_delta: not the answer
                    elif kind == "content_block_start":
                        content = event.get("content_block") or {}
                        if content.get("type") == "tool_use":
                            blocks[event.get("index", len(blocks))] = [
                                content.get("id") or "",
                                content.get("name") or "",
                                [],
                                content.get("input"),
                            ]
                    elif kind == "message_start":
                        message = event.get("message") or {}
                        model = message.get("model") or ""
                        usage = message.get("usage") or {}
                        input_tokens = _input_tokens(usage)
                        output_tokens = int(usage.get("output_tokens") or 0)
                    elif kind == "message_delta":
                        stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                        usage = event.get("usage") or {}
                        output_tokens = int(usage.get("output_tokens") or output_tokens)
                        input_tokens = _input_tokens(usage) or input_tokens
                    elif kind == "error":
                        raise self._stream_error(
                            event.get("error"), response.headers.get("request-id")
                        )
            finally:
                await response.aclose()
        except anthropic.APIError as exc:
            raise self._map_error(exc) from _cause(exc)
        except httpx2.RequestError as exc:
            raise self._errors.broke_off(exc) from exc
        ready = [
            parse_tool_call(b[0], b[1], "".join(b[2]) or _start_input(b[3]))
            for _, b in sorted(blocks.items())
        ]
        if stop_reason == "refusal" and not said:
            yield TextDelta(REFUSED_TEXT)
        if ready:
            yield ToolCallsReady(tuple(ready))
        yield TurnFinished(
            _finish_reason(stop_reason, bool(ready)),
            Usage(input_tokens, output_tokens),
            model or self.model,
        )

    async def _complete(self, request: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        try:
            response = await self._client.post(
                "/v1/messages", body=request, cast_to=httpx2.Response
            )
            message = response.json()
        except anthropic.APIError as exc:
            raise self._map_error(exc) from _cause(exc)
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.base_url} answered with invalid JSON: {exc}"
            ) from None
        if not isinstance(message, dict):
            raise ProviderUnavailable(f"{self.base_url} answered with {type(message).__name__}")
        if message.get("type") == "error":
            raise self._stream_error(message.get("error"), response.headers.get("request-id"))
        calls: list[ToolCall] = []
        said = False
        for block in message.get("content") or []:
            if block.get("type") == "text" and block.get("text"):
                said = True
                yield TextDelta(block["text"])
            elif block.get("type") == "tool_use":
                calls.append(
                    parse_tool_call(
                        block.get("id") or "",
                        block.get("name") or "",
                        json.dumps(block.get("input") or {}),
                    )
                )
        if message.get("stop_reason") == "refusal" and not said:
            yield TextDelta(REFUSED_TEXT)
        if calls:
            yield ToolCallsReady(tuple(calls))
        usage = message.get("usage") or {}
        yield TurnFinished(
            _finish_reason(message.get("stop_reason") or "", bool(calls)),
            Usage(_input_tokens(usage), int(usage.get("output_tokens") or 0)),
            message.get("model") or self.model,
        )

    def _map_error(self, exc: anthropic.APIError) -> ProviderError:
        """Translate an SDK exception into the `bot.errors` tree, key redacted."""
        if isinstance(exc, anthropic.APITimeoutError):
            return self._errors.timed_out()
        if isinstance(exc, anthropic.APIConnectionError):
            cause = exc.__cause__
            return self._errors.unreachable(
                f"{type(cause).__name__}: {cause}" if cause else exc.message
            )
        if not isinstance(exc, anthropic.APIStatusError):
            return self._errors.failed(exc.message)
        error = exc.body.get("error") if isinstance(exc.body, dict) else None
        message = _error_message(error) or exc.message
        too_long = _is_context_error(message)
        return self._errors.http(
            exc.status_code, message, exc.request_id, context_too_long=too_long
        )

    def _stream_error(self, error: Any, request_id: str | None) -> ProviderError:
        """An `error` event inside a 200 stream (e.g. `overloaded_error`)."""
        body = error if isinstance(error, dict) else {"message": str(error)}
        message = _error_message(body) or "unknown error"
        kind = str(body.get("type") or "")
        where = f", request id {request_id}" if request_id else ""
        detail = self._errors.redact(
            f"{self.base_url} failed mid-stream{where}: {message} [{kind}]"
        )
        if _is_context_error(message):
            return ContextTooLong(detail)
        if kind == "rate_limit_error":
            return ProviderRateLimited(detail)
        if kind in ("overloaded_error", "api_error"):
            return ProviderUnavailable(detail)
        if kind in ("authentication_error", "permission_error"):
            return ProviderAuthError(detail)
        if kind == "invalid_request_error":
            return ProviderBadRequest(detail)
        return ProviderError(detail)


def _input_tokens(usage: dict[str, Any]) -> int:
    # Cached prompt tokens are reported apart; the prompt is all of them.
    return sum(
        int(usage.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def _start_input(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict) and value else ""


def _finish_reason(stop_reason: str, has_calls: bool) -> str:
    if not stop_reason:
        return "tool_calls" if has_calls else "stop"
    return STOP_REASONS.get(stop_reason, stop_reason)


def _error_message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return ""


def _is_context_error(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _CONTEXT_HINTS)


def _cause(exc: anthropic.APIError) -> BaseException | None:
    return None if isinstance(exc, anthropic.APIStatusError) else exc
