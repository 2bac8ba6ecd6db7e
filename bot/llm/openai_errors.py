"""OpenAI-compatible error answers turned into the `bot.errors` tree.

HTTP status errors come from the SDK (`map_error`); an `{"error": ...}` object inside a
200 stream or body is read here too (`stream_error`). Vendors shape the body their own
way: OpenAI's `{"error": {"message", "type", "code"}}`, Gemini's JSON array of one such
object, Qianfan's `code`/`type` strings. The key never reaches a message.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from bot.errors import ContextTooLong, ProviderError, ProviderRateLimited, StreamFailed
from bot.llm.errors import ErrorMapper

_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "range of input length")


def map_error(errors: ErrorMapper, exc: openai.APIError) -> ProviderError:
    """Translate an SDK exception into the `bot.errors` tree, key redacted."""
    if isinstance(exc, openai.APITimeoutError):
        return errors.timed_out()
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        return errors.unreachable(f"{type(cause).__name__}: {cause}" if cause else exc.message)
    if not isinstance(exc, openai.APIStatusError):
        return errors.failed(exc.message)
    message = _vendor_message(exc.body) or exc.message
    too_long = exc.status_code == 400 and _is_context_error(exc.code, message)
    return errors.http(exc.status_code, message, exc.request_id, context_too_long=too_long)


def stream_error(errors: ErrorMapper, error: Any, request_id: str | None) -> ProviderError:
    """An `{"error": ...}` object sent inside a 200 stream."""
    body = error if isinstance(error, dict) else {"message": str(error)}
    message = _vendor_message(body) or "unknown error"
    # OpenAI's `type`/`code`, Qianfan's string codes, Google's `status`.
    tags = " ".join(str(body.get(key) or "") for key in ("type", "code", "status")).strip()
    where = f", request id {request_id}" if request_id else ""
    detail = errors.redact(f"{errors.base_url} failed mid-stream{where}: {message} [{tags}]")
    code = body.get("code")
    if _is_context_error(code if isinstance(code, str) else None, message):
        return ContextTooLong(detail)
    lowered = tags.lower()
    # OpenRouter's mid-stream error carries the upstream HTTP status as a number.
    status = code if isinstance(code, int) else 0
    if "rate_limit" in lowered or "resource_exhausted" in lowered or status == 429:
        return ProviderRateLimited(detail)
    if (
        status >= 500
        or status == 408
        or any(word in lowered for word in ("server_error", "unavailable", "internal"))
        or "overloaded" in message.lower()
    ):
        return StreamFailed(detail)
    return ProviderError(detail)


def _vendor_message(body: object) -> str:
    # Gemini answers errors as a JSON array of one {"error": {...}} object.
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0].get("error", body[0])
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return message
        return json.dumps(body, ensure_ascii=False)[:500]
    return str(body)[:500] if body else ""


async def retry_delay_from_body(response: httpx2.Response) -> None:
    """Give a 429 that names its delay only in the body (Gemini's `RetryInfo.retryDelay`,
    e.g. "53s") a `retry-after` header, so the SDK's own retry waits that long."""
    if response.status_code != 429 or "retry-after" in response.headers:
        return
    await response.aread()
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            response.headers["retry-after"] = f"{seconds:g}"
            return


def _is_context_error(code: str | None, message: str) -> bool:
    lowered = message.lower()
    return code == "context_length_exceeded" or any(hint in lowered for hint in _CONTEXT_HINTS)


def error_cause(exc: openai.APIError) -> BaseException | None:
    # Status errors carry the vendor's message, which may echo the API key: do not chain them.
    return None if isinstance(exc, openai.APIStatusError) else exc
