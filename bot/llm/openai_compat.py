"""`Provider` for any OpenAI-compatible Chat Completions API.

Works with OpenAI, DashScope/Qwen compatible mode, DeepSeek, vLLM and Ollama; a
`VendorProfile` (bot/llm/profiles.py) says what each accepts and how it streams. The
`openai` SDK supplies configuration, authentication, retries and HTTP error handling.
The request goes through the SDK's low-level `post()` and the answer is read as raw
SSE lines decoded with `json.loads`: `chat.completions.create` walks every message of
the request through its TypedDict transform and builds a pydantic object per streamed
chunk, which together cost more CPU than the rest of a turn (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
import openai

from bot.config import LLMSettings
from bot.domain import ChatMessage, ToolCall, Usage, VendorState
from bot.errors import (
    AnswerCutOff,
    ProviderUnavailable,
)
from bot.llm import openai_wire as wire
from bot.llm.base import (
    REFUSED,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallsReady,
    ToolSpec,
    TurnFinished,
)
from bot.llm.errors import ErrorMapper
from bot.llm.openai_errors import error_cause, map_error, retry_delay_from_body, stream_error
from bot.llm.openai_wire import to_openai_messages, to_openai_tools
from bot.llm.profiles import GENERIC, ThinkTagFilter, VendorProfile, profile_for
from bot.llm.thinking import may_think, plan_thinking
from bot.llm.tool_calls import (
    ToolCallAssembler,
    ToolCallMarkup,
    arguments_text,
    parse_tool_call,
    thought_signature,
)

__all__ = ["OpenAICompatProvider", "parse_tool_call", "to_openai_messages", "to_openai_tools"]

log = logging.getLogger(__name__)

# The SDK's own switch (used by `with_streaming_response`) for "return the response unread".
_RAW_STREAM_HEADER = {"X-Stainless-Raw-Response": "stream"}


class OpenAICompatProvider:
    """One model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        stream: bool = True,
        stream_usage: bool = True,
        temperature: float | None = None,
        max_tokens: int | None = None,
        parallel_tool_calls: bool | None = None,
        strict_tools: bool = False,
        extra_body: dict[str, Any] | None = None,
        profile: VendorProfile | None = None,
        tool_choice: str | None = None,
        thinking: str = "auto",
        thinking_budget: int | None = None,
        headers: dict[str, str] | None = None,
        state_key: str = "",
    ) -> None:
        self.profile = profile = profile or GENERIC
        # Whose reasoning state this is (`VendorState.vendor`): only ours goes back. The
        # profile's name alone, or "@<name>" for a provider of the providers file, so
        # two accounts on one profile never read each other's.
        self.state_key = state_key or profile.name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or ""
        self._errors = ErrorMapper(self.base_url, self._api_key, model, timeout, max_retries)
        self._stream = stream
        # Send only what the vendor accepts; say once what is dropped.
        dropped = []
        if parallel_tool_calls is None:
            parallel_tool_calls = profile.default_parallel_tool_calls
        if parallel_tool_calls is not None and not profile.parallel_tool_calls:
            dropped.append(f"parallel_tool_calls={str(parallel_tool_calls).lower()}")
            parallel_tool_calls = None
        if strict_tools and not profile.strict_schemas:
            dropped.append("strict tool schemas")
            strict_tools = False
        if tool_choice and tool_choice not in profile.tool_choice:
            dropped.append(f"tool_choice={tool_choice}")
            tool_choice = None
        thinks = may_think(profile, thinking, stream=stream)
        if thinks and tool_choice not in (None, "", "auto", "none"):
            dropped.append(f"tool_choice={tool_choice} while thinking")
            tool_choice = None
        extra_body = dict(extra_body or {})
        if thinks and "response_format" in extra_body:
            dropped.append("JSON mode (response_format) while thinking")
            del extra_body["response_format"]
        plan = plan_thinking(profile, thinking, thinking_budget, stream=stream)
        dropped += plan.dropped
        if thinks and profile.temperature_one_while_thinking and temperature not in (None, 1, 1.0):
            dropped.append(f"temperature={temperature} while thinking")
            temperature = None
        if dropped:
            log.warning(
                "the %s profile does not accept %s: not sent", profile.name, ", ".join(dropped)
            )
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._stream_usage = stream_usage and profile.stream_usage
        self._parallel_tool_calls = parallel_tool_calls
        self._strict_tools = strict_tools
        self._tool_choice = tool_choice or None
        self._thinking_body = plan.body
        self._extra_body = extra_body
        # DeepSeek's tool-round reasoning travels back unless thinking is off.
        self._replay = profile.reasoning_replay if thinking != "off" else ""
        self._keep = profile.reasoning_replay
        self._keep_fields = (
            profile.reasoning_fields if self._keep == "*" else (self._keep,) if self._keep else ()
        )
        self._signed = profile.thought_signatures
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url,
            # Local servers (Ollama, vLLM) need no key, but the SDK refuses an empty one.
            api_key=self._api_key or "EMPTY",
            timeout=httpx2.Timeout(timeout, connect=connect_timeout),
            max_retries=max_retries,
            default_headers=headers,
            http_client=(
                openai.DefaultAsyncHttpxClient(event_hooks={"response": [retry_delay_from_body]})
                if profile.retry_delay_in_body
                else None
            ),
        )

    @classmethod
    def from_settings(cls, settings: LLMSettings, *, state_key: str = "") -> OpenAICompatProvider:
        """Build the provider from the `PARLEY_*`/`OPENAI_*` settings."""
        return cls(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            model=settings.model,
            timeout=settings.timeout_seconds,
            connect_timeout=settings.connect_timeout_seconds,
            max_retries=settings.max_retries,
            stream=settings.stream,
            stream_usage=settings.stream_usage,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            parallel_tool_calls=settings.parallel_tool_calls,
            strict_tools=settings.strict_tools,
            extra_body=settings.extra_body,
            profile=profile_for(settings.profile, settings.base_url),
            tool_choice=settings.tool_choice or None,
            thinking=settings.thinking,
            thinking_budget=settings.thinking_budget,
            headers={"appid": settings.qianfan_appid} if settings.qianfan_appid else None,
            state_key=state_key,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], *, model: str = ""
    ) -> AsyncIterator[StreamEvent]:
        """One model call: `TextDelta`s, at most one `ToolCallsReady`, one `TurnFinished`.

        `model` overrides the configured model for this call (a channel's own model)."""
        request = self.build_request(messages, tools)
        if model:
            request["model"] = model
        if request.get("temperature", 1) != 1 and _default_temperature_only(
            self.profile, request["model"]
        ):
            log.warning("%s takes only the default temperature: not sent", request["model"])
            del request["temperature"]
        return self._stream_sse(request) if self._stream else self._complete(request)

    def build_request(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> dict[str, Any]:
        """The JSON body of a `/chat/completions` request (without `stream`)."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(
                messages,
                replay=self._replay,
                required=self.profile.reasoning_required,
                vendor=self.state_key,
                signatures=self._signed,
                details=self.profile.reasoning_details,
                think=self.profile.think_replay,
                ids=self.profile.tool_call_ids,
            ),
        }
        if tools:
            request["tools"] = to_openai_tools(tools, strict=self._strict_tools)
            if self._parallel_tool_calls is not None:
                request["parallel_tool_calls"] = self._parallel_tool_calls
            if self._tool_choice:
                request["tool_choice"] = self._tool_choice
        if self._temperature is not None:
            request["temperature"] = self._temperature
        if self._max_tokens is not None:
            request[self.profile.max_tokens_field] = self._max_tokens
        if self._thinking_body:
            request.update(self._thinking_body)
        if self._extra_body:
            request.update(self._extra_body)
        return request

    async def _stream_sse(self, request: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        if self._stream_usage:
            request["stream_options"] = {"include_usage": True}
        loads = json.loads
        model = ""
        finish_reason = ""
        done = False
        usage = Usage()
        calls = ToolCallAssembler()
        think = ThinkTagFilter() if self.profile.think_tags else None
        markup = ToolCallMarkup() if self.profile.tool_call_markup else None
        keep = self._keep_fields
        shown_reasoning = self.profile.reasoning_fields
        reasoning: dict[str, list[str]] = {}  # the reasoning a tool round must send back
        details: list[dict[str, Any]] | None = [] if self.profile.reasoning_details else None
        in_choice = self.profile.usage_in_choice
        refused = False
        request["stream"] = True
        try:
            response = await self._client.post(
                "/chat/completions",
                body=request,
                cast_to=httpx2.Response,
                options={"headers": _RAW_STREAM_HEADER},
            )
            try:
                async for line in response.aiter_lines():
                    # Skip blank separators, ": keep-alive" comments and "event:" lines. After
                    # [DONE] keep reading to the end: a drained response keeps its connection.
                    if done or not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        continue
                    try:
                        chunk = loads(data)
                    except ValueError as exc:
                        raise ProviderUnavailable(
                            f"{self.base_url} sent a chunk that is not JSON ({exc}): {data[:200]!r}"
                        ) from None
                    if not isinstance(chunk, dict):
                        # Gemini wraps an error in a JSON array of one object.
                        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict):
                            chunk = chunk[0]
                        else:
                            continue
                    if chunk.get("error"):
                        raise stream_error(
                            self._errors, chunk["error"], response.headers.get("x-request-id")
                        )
                    if not model:
                        model = chunk.get("model") or ""
                    if chunk.get("usage"):
                        usage = wire.usage(chunk["usage"])
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        # Reasoning is never answer text; only a profile that must send it
                        # back keeps it.
                        for name in keep:
                            if isinstance(thought := delta.get(name), str):
                                reasoning.setdefault(name, []).append(thought)
                        if details is not None and delta.get("reasoning_details"):
                            _merge_details(details, delta["reasoning_details"])
                        for name in shown_reasoning:
                            if isinstance(thought := delta.get(name), str) and thought:
                                yield ReasoningDelta(thought)
                                break
                        content = delta.get("content")
                        if content:
                            if think is not None:
                                content = think.feed(content)
                            if markup is not None and content:
                                content = markup.feed(content)
                            if content:
                                yield TextDelta(content)
                        elif delta.get("refusal"):
                            refused = True
                            yield TextDelta(delta["refusal"])
                        if delta.get("tool_calls"):
                            calls.feed(delta["tool_calls"])
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
                        if in_choice and choice.get("usage"):
                            usage = wire.usage(choice["usage"])
            finally:
                await response.aclose()
        except openai.APIError as exc:
            raise map_error(self._errors, exc) from error_cause(exc)
        except httpx2.RequestError as exc:  # a read failing mid-stream (timeout, reset)
            raise self._errors.broke_off(exc) from exc
        if not done and not finish_reason:
            # The body ended cleanly, but without a finish reason and without [DONE]: what
            # arrived is the start of an answer, never a whole one.
            raise AnswerCutOff(
                self._errors.redact(
                    f"{self.base_url} ended the stream without a finish reason or [DONE]"
                )
            )
        tail = think.flush() if think is not None else ""
        if markup is not None:
            tail = markup.feed(tail) + markup.flush()
        if tail:
            yield TextDelta(tail)
        ready = calls.calls()
        if markup is not None:
            ready += markup.calls
        if ready:
            yield ToolCallsReady(tuple(ready))
        yield TurnFinished(
            wire.finish_reason(finish_reason, bool(ready), refused),
            usage,
            model or self.model,
            self._state(
                {name: "".join(pieces) for name, pieces in reasoning.items()},
                ready,
                calls.signatures() if self._signed else None,
                details,
                think.block() if think is not None and self.profile.think_replay else "",
            ),
            REFUSED if refused else wire.outcome(finish_reason),
            finish_reason in wire.TRANSIENT,
        )

    async def _complete(self, request: dict[str, Any]) -> AsyncIterator[StreamEvent]:
        try:
            response = await self._client.post(
                "/chat/completions", body=request, cast_to=httpx2.Response
            )
            completion = response.json()
        except openai.APIError as exc:
            raise map_error(self._errors, exc) from error_cause(exc)
        except ValueError as exc:
            raise ProviderUnavailable(
                f"{self.base_url} answered with invalid JSON: {exc}"
            ) from None
        if not isinstance(completion, dict):
            raise ProviderUnavailable(f"{self.base_url} answered with {type(completion).__name__}")
        if completion.get("error"):
            raise stream_error(
                self._errors, completion["error"], response.headers.get("x-request-id")
            )
        choices = completion.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        content = message.get("content") or ""
        block = ""
        if content and self.profile.think_tags:
            think = ThinkTagFilter()
            content = think.feed(content) + think.flush()
            block = think.block() if self.profile.think_replay else ""
        marked: list[ToolCall] = []
        if content and self.profile.tool_call_markup:
            markup = ToolCallMarkup()
            content = markup.feed(content) + markup.flush()
            marked = markup.calls
        if content:
            yield TextDelta(content)
        elif message.get("refusal"):
            yield TextDelta(message["refusal"])
        sent = [
            call
            for call in message.get("tool_calls") or []
            if isinstance(call, dict) and call.get("type", "function") == "function"
        ]
        ready = [
            parse_tool_call(
                call.get("id") or "",
                (call.get("function") or {}).get("name") or "",
                arguments_text((call.get("function") or {}).get("arguments")),
            )
            for call in sent
        ] + marked
        signatures = {str(n): s for n, c in enumerate(sent) if (s := thought_signature(c))}
        if ready:
            yield ToolCallsReady(tuple(ready))
        thoughts = {n: t for n in self._keep_fields if isinstance(t := message.get(n), str)}
        listed = message.get("reasoning_details")
        reason = choice.get("finish_reason") or ""
        refused = bool(message.get("refusal"))
        yield TurnFinished(
            wire.finish_reason(reason, bool(ready), refused),
            wire.usage(completion.get("usage")),
            completion.get("model") or self.model,
            self._state(
                thoughts,
                ready,
                signatures,
                listed if self.profile.reasoning_details and isinstance(listed, list) else None,
                block,
            ),
            REFUSED if refused else wire.outcome(reason),
            reason in wire.TRANSIENT,
        )

    def _state(
        self,
        reasoning: dict[str, str],
        calls: list[ToolCall],
        signatures: dict[str, str] | None,
        details: list[dict[str, Any]] | None = None,
        think: str = "",
    ) -> VendorState | None:
        """What an answer must carry back: a tool round's reasoning (DeepSeek, Kimi, GLM,
        Ark, whatever streamed for the generic profile), its calls' thought signatures by
        position (Gemini), its `reasoning_details` (OpenRouter), and any answer's <think>
        block (MiniMax), whichever came."""
        data: dict[str, Any] = {"think": think} if think else {}
        if calls:
            if self._keep == "*":
                # The first field that streamed, under its own name.
                data.update(next(({n: t} for n, t in reasoning.items() if t), {}))
            elif self._keep in reasoning:
                data[self._keep] = reasoning[self._keep]
            if signatures:
                data["signatures"] = signatures
            if details:
                data["reasoning_details"] = details
        return VendorState(self.state_key, data) if data else None


def _merge_details(kept: list[dict[str, Any]], pieces: Any) -> None:
    """OpenRouter streams `reasoning_details` as pieces of items: a piece with the index
    and type of the last item continues its text; anything else is a new item."""
    for piece in pieces if isinstance(pieces, list) else ():
        if not isinstance(piece, dict):
            continue
        last = kept[-1] if kept else None
        if (
            last is not None
            and piece.get("index") == last.get("index")
            and piece.get("type") == last.get("type")
            and isinstance(piece.get("text"), str)
            and isinstance(last.get("text"), str)
        ):
            last["text"] += piece["text"]
        else:
            kept.append(dict(piece))


def _default_temperature_only(profile: VendorProfile, model: str) -> bool:
    # OpenAI's reasoning models (GPT-5 family, o-series) refuse any temperature but 1.
    return profile.name == "openai" and model.startswith(("gpt-5", "o1", "o3", "o4"))
