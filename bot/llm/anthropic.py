"""`Provider` for Anthropic's Messages API, through the official `anthropic` SDK.

The history is converted by `bot.llm.anthropic_history`. Thinking (`thinking` blocks with
their signatures, `redacted_thinking` blocks) is never part of the answer: it is returned
unchanged as the `VendorState` of the assistant message and sent back with it, as the API
requires of the assistant turn that carries `tool_use`. `PARLEY_LLM_THINKING=on` asks for
thinking (adaptive where the model takes it, else a `budget_tokens` budget); auto and off
send nothing (the model's default). A thinking request never forces a tool, never sets a
temperature, and never continues a tool loop that began without thinking.

As in `openai_compat`, the SDK supplies configuration, authentication, retries and HTTP
error mapping, while the stream is read as raw SSE lines decoded with `json.loads`
(`messages.stream()` builds a pydantic event and a full message snapshot per chunk). A
stream that ends before `message_stop` (and before a stop reason) is cut off.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import anthropic
import httpx2

from bot.config import LLMSettings
from bot.domain import ChatMessage, ToolCall, Usage
from bot.errors import (
    AnswerCutOff,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    StreamFailed,
)
from bot.llm.anthropic_history import THINKING_TYPES, to_anthropic_messages, to_anthropic_tools
from bot.llm.anthropic_thinking import DEFAULT_MAX_TOKENS, ThinkingRules, thinking_state
from bot.llm.base import (
    COMPLETE,
    LENGTH,
    REFUSED,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.llm.errors import ErrorMapper
from bot.llm.openai_compat import parse_tool_call

__all__ = ["AnthropicProvider", "to_anthropic_messages", "to_anthropic_tools"]

_RAW_STREAM_HEADER = {"X-Stainless-Raw-Response": "stream"}
_CONTEXT_HINTS = ("prompt is too long", "context window", "too many total text bytes")
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
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


class AnthropicProvider:
    """One Claude model behind the Messages API (`/v1/messages`).

    `thinking` is PARLEY_LLM_THINKING: "on" sends a `thinking` parameter fit for the
    model, "auto" and "off" send none. `thinking_budget` is `budget_tokens` for models
    that take only manual thinking (and, when set, for the Claude 4.6 models)."""

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
        tool_choice: str = "",
        thinking: Literal["auto", "on", "off"] = "auto",
        thinking_budget: int | None = None,
        extra_body: dict[str, Any] | None = None,
        state_key: str = "anthropic",
    ) -> None:
        self.model = model
        # Whose reasoning state this is (`VendorState.vendor`): only ours goes back.
        self.state_key = state_key
        self._api_key = api_key or ""
        self._stream = stream
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._thinking = ThinkingRules(thinking, thinking_budget, max_tokens)
        self._parallel_tool_calls = parallel_tool_calls
        self._tool_choice = _TOOL_CHOICES.get(tool_choice, "")
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
    def from_settings(cls, settings: LLMSettings, *, state_key: str = "") -> AnthropicProvider:
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
            tool_choice=settings.tool_choice,
            thinking=settings.thinking,
            thinking_budget=settings.thinking_budget,
            extra_body=settings.extra_body,
            state_key=state_key or "anthropic",
        )

    async def aclose(self) -> None:
        await self._client.close()

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> AsyncIterator[StreamEvent]:
        """One model call: `TextDelta`s, at most one `ToolCallsReady`, one `TurnFinished`.

        `model` overrides the configured model for this call (a channel's own model)."""
        request = self.build_request(messages, tools, model=model)
        return self._stream_sse(request) if self._stream else self._complete(request)

    def build_request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> dict[str, Any]:
        """The JSON body of a `/v1/messages` request (without `stream`)."""
        model = model or self.model
        system, converted = to_anthropic_messages(messages, model=model, vendor=self.state_key)
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": self._max_tokens or DEFAULT_MAX_TOKENS,
            "messages": converted,
        }
        if system:
            request["system"] = system
        if self._thinking.mode == "on":
            self._thinking.ask(request, model)
        if tools:
            request["tools"] = to_anthropic_tools(tools)
            choice: dict[str, Any] = {"type": self._tool_choice} if self._tool_choice else {}
            if self._parallel_tool_calls is False and self._tool_choice != "none":
                choice = {"type": choice.get("type", "auto"), "disable_parallel_tool_use": True}
            if choice:
                request["tool_choice"] = choice
        if self._temperature is not None:
            request["temperature"] = min(self._temperature, 1.0)  # Anthropic's range is 0..1
        if self._extra_body:
            request.update(self._extra_body)
        if "thinking" in request:
            self._thinking.enforce(request)
        return request

    async def _stream_sse(self, request: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        request["stream"] = True
        loads = json.loads
        model = ""
        stop_reason = ""
        stopped = False
        input_tokens = output_tokens = 0
        said = 0  # characters of answer text so far
        blocks: dict[int, list[Any]] = {}  # index -> [id, name, [json fragments], start input]
        kept: dict[int, dict[str, Any]] = {}  # index -> thinking or redacted_thinking block
        thought: dict[int, list[str]] = {}  # index -> thinking_delta pieces
        order: list[tuple[str, int, int]] = []  # (block type, index, text characters before)
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
                            text = delta.get("text")
                            if text:
                                said += len(text)
                                yield TextDelta(text)
                        elif delta_type == "input_json_delta":
                            block = blocks.get(event.get("index", -1))
                            if block is not None and delta.get("partial_json"):
                                block[2].append(delta["partial_json"])
                        elif delta_type == "thinking_delta":
                            pieces = thought.get(event.get("index", -1))
                            if pieces is not None and delta.get("thinking"):
                                pieces.append(delta["thinking"])
                                yield ReasoningDelta(delta["thinking"])
                        elif delta_type == "signature_delta":
                            signed = kept.get(event.get("index", -1))
                            if signed is not None and signed["type"] == "thinking":
                                signed["signature"] = delta.get("signature") or ""
                        # citations_delta: not needed for the answer
                    elif kind == "content_block_start":
                        content = event.get("content_block") or {}
                        block_type = content.get("type") or ""
                        index = event.get("index", len(order))
                        order.append((block_type, index, said))
                        if block_type == "tool_use":
                            blocks[index] = [
                                content.get("id") or "",
                                content.get("name") or "",
                                [],
                                content.get("input"),
                            ]
                        elif block_type == "thinking":
                            kept[index] = {
                                "type": "thinking",
                                "thinking": content.get("thinking") or "",
                                "signature": content.get("signature") or "",
                            }
                            thought[index] = []
                        elif block_type == "redacted_thinking":
                            kept[index] = {
                                "type": "redacted_thinking",
                                "data": content.get("data") or "",
                            }
                    elif kind == "message_stop":
                        stopped = True
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
        if not stopped and not stop_reason:
            raise AnswerCutOff(
                f"{self.base_url} ended the stream without message_stop or a stop reason: "
                f"the answer was cut off after {said} characters"
            )
        ready = [
            parse_tool_call(b[0], b[1], "".join(b[2]) or _start_input(b[3]))
            for _, b in sorted(blocks.items())
        ]
        for index, pieces in thought.items():
            if pieces:
                kept[index]["thinking"] += "".join(pieces)
        if ready:
            yield ToolCallsReady(tuple(ready))
        yield TurnFinished(
            _finish_reason(stop_reason, bool(ready)),
            Usage(input_tokens, output_tokens),
            model or request["model"],
            thinking_state(kept, order, said, request["model"], self.state_key) if kept else None,
            _outcome(stop_reason),
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
        said = 0
        kept: dict[int, dict[str, Any]] = {}
        order: list[tuple[str, int, int]] = []
        for index, block in enumerate(message.get("content") or []):
            block_type = block.get("type") or ""
            order.append((block_type, index, said))
            if block_type == "text" and block.get("text"):
                said += len(block["text"])
                yield TextDelta(block["text"])
            elif block_type == "tool_use":
                calls.append(
                    parse_tool_call(
                        block.get("id") or "",
                        block.get("name") or "",
                        json.dumps(block.get("input") or {}),
                    )
                )
            elif block_type in THINKING_TYPES:
                kept[index] = block
        if calls:
            yield ToolCallsReady(tuple(calls))
        usage = message.get("usage") or {}
        yield TurnFinished(
            _finish_reason(message.get("stop_reason") or "", bool(calls)),
            Usage(_input_tokens(usage), int(usage.get("output_tokens") or 0)),
            message.get("model") or request["model"],
            thinking_state(kept, order, said, request["model"], self.state_key) if kept else None,
            _outcome(message.get("stop_reason") or ""),
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
            return StreamFailed(detail)
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


def _outcome(stop_reason: str) -> str:
    """The neutral outcome (bot/llm/base.py): a refusal must not be continued as is, and
    the Messages API's docs ask for the refused turn to be left out of later requests."""
    if stop_reason == "refusal":
        return REFUSED
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return LENGTH
    return COMPLETE


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
