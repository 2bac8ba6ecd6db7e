"""Request bodies bounded before anything reads them: 413 past each endpoint's limit.

`BodyLimitMiddleware` sits in front of every route. A declared `Content-Length` over the
limit is refused before the application runs; a body without one (chunked, or a client
that lies) is counted as it arrives, and the message that crosses the limit ends the
request with 413. uvicorn holds at most 64 KiB of unread body per connection (it pauses
reading until the app asks for more), so a 200 MB upload costs at most the limit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """At most `max_bytes` for `path` (and the paths under it), for requests of
    `media_type` when one is given (Slack sends JSON events and form-encoded presses to
    the same path)."""

    path: str
    max_bytes: int
    media_type: str = ""

    def matches(self, path: str, media_type: str) -> bool:
        prefix = self.path.rstrip("/")
        on_path = path == self.path or path.startswith(prefix + "/")
        return on_path and (not self.media_type or self.media_type == media_type)


class BodyTooLarge(Exception):
    """Raised inside the application's `receive` once the body passed its limit."""


class BodyLimitMiddleware:
    """Answers 413 to a body over the first matching `BodyLimit` (else `default`)."""

    def __init__(self, app: ASGIApp, *, limits: Sequence[BodyLimit], default: int) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.default = default

    def limit_for(self, path: str, headers: Headers) -> int:
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        for limit in self.limits:
            if limit.matches(path, media_type):
                return limit.max_bytes
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_for(scope["path"], headers)
        declared = headers.get("content-length", "")
        # h11 has already refused a Content-Length that is not a number.
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit, f"{declared} bytes declared")
            return
        received = 0
        started = responded = False

        async def counted_receive() -> Message:
            nonlocal received, responded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        responded = True
                        await self._refuse(scope, send, limit, f"over {received} bytes sent")
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if responded:
                return  # the 413 went out; whatever the application still sends is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not responded:
                raise

    async def _refuse(self, scope: Scope, send: Send, limit: int, what: str) -> None:
        client = scope.get("client") or ("?", 0)
        log.warning(
            "http: refused a body to %s from %s with 413: %s, limit %d",
            scope["path"],
            client[0],
            what,
            limit,
        )
        response = PlainTextResponse(
            f"Request body too large: at most {limit} bytes here.\n", status_code=413
        )

        async def no_receive() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_receive, send)
