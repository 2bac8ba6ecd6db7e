"""A host that is not the platform's: the stand-in for `evil.example` in download tests.

`ElsewhereServer` is a real aiohttp server on 127.0.0.1 (its own port, so its origin
differs from the fake Slack's and the fake Telegram's) that serves `body` on every GET
path and records each request's path and `Authorization` header in `requests`, so a test
can tell whether Parley sent a platform's token, or anything at all, to a host it should
not trust.
"""

from __future__ import annotations

import threading

from aiohttp import web

from tests.fakes.http import AiohttpServer, FakeServer

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)


class ElsewhereServer(FakeServer):
    """Serves `body` (a small JPEG unless set) on any path; records what it was asked."""

    def __init__(self) -> None:
        super().__init__(AiohttpServer(self._build, name="fake-elsewhere"))
        self.root = ""
        self.body = JPEG
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def _build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        return app

    def started(self, root: str) -> None:
        self.root = root

    def url(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}"

    async def _serve(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests.append(
                {
                    "path": request.match_info["path"],
                    "authorization": request.headers.get("Authorization", ""),
                }
            )
        return web.Response(body=self.body, content_type="image/jpeg")
