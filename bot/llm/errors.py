"""Turning a vendor SDK's failures into the `bot.errors` tree, the same way for all.

The openai and anthropic SDKs raise parallel but distinct exception classes whose HTTP
status errors map one to one to status codes (429, 401/403, 404, 5xx). Each provider
dispatches on its own SDK's classes and extracts the vendor's message; the wording,
the key redaction and the status → category rules live here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import (
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)


@dataclass(frozen=True, slots=True)
class ErrorMapper:
    """Builds `ProviderError`s for one endpoint; never lets the API key into a message."""

    base_url: str
    api_key: str
    model: str
    timeout: float
    max_retries: int

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "***") if self.api_key else text

    def timed_out(self) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"no answer from {self.base_url} within {self.timeout}s "
            f"(after {self.max_retries} retries)"
        )

    def unreachable(self, reason: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            self.redact(
                f"cannot reach {self.base_url} (after {self.max_retries} retries): {reason}"
            )
        )

    def broke_off(self, exc: BaseException) -> ProviderUnavailable:
        """A read failing mid-stream (timeout, reset)."""
        return ProviderUnavailable(
            self.redact(f"{self.base_url} broke off mid-stream: {type(exc).__name__}: {exc}")
        )

    def failed(self, message: str) -> ProviderError:
        return ProviderError(self.redact(f"{self.base_url} failed: {message}"))

    def http(
        self, status: int, message: str, request_id: str | None, *, context_too_long: bool
    ) -> ProviderError:
        """An HTTP error answer, by status; `context_too_long` as the vendor signals it."""
        where = f", request id {request_id}" if request_id else ""
        detail = self.redact(f"{self.base_url} answered HTTP {status}{where}: {message}")
        if status == 429:
            return ProviderRateLimited(detail, status_code=status)
        if status >= 500:  # including Anthropic's 529 overloaded
            return ProviderUnavailable(detail, status_code=status)
        if status in (401, 403):
            return ProviderAuthError(detail, status_code=status)
        if context_too_long:
            return ContextTooLong(detail, status_code=status)
        if status == 404:
            return ProviderBadRequest(
                f"{detail} (is the model name {self.model!r} right for this endpoint?)",
                status_code=status,
            )
        return ProviderBadRequest(detail, status_code=status)
