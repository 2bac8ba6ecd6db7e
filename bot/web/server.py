"""Starlette app and an embeddable uvicorn server with `start`/`stop`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.web.limits import BodyLimit, BodyLimitMiddleware

log = logging.getLogger(__name__)

HealthCheck = Callable[[], Awaitable[dict[str, object]]]


def create_web_app(
    *,
    health: HealthCheck,
    routes: Sequence[BaseRoute] = (),
    body_limits: Sequence[BodyLimit] = (),
    max_body: int = 65_536,
) -> Starlette:
    """`/healthz` answers 200 while the process is alive and its checks pass, and says
    nothing more to anyone (the reasons are in the log and on `/readyz`); every request
    body is bounded by `body_limits` (else `max_body` bytes)."""

    async def healthz(_request: Request) -> JSONResponse:
        try:
            await health()
        except Exception as exc:  # a failing check is a 503, not a crash
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "error"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/healthz", healthz), *routes],
        middleware=[Middleware(BodyLimitMiddleware, limits=body_limits, default=max_body)],
    )


class _EmbeddedServer(uvicorn.Server):
    # The host process owns signal handling; uvicorn must not install or re-raise its own.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """Serves an ASGI app in the current event loop until `stop()`."""

    def __init__(self, app: Starlette, *, host: str, port: int) -> None:
        # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1;
        # bot/web/clients.py believes only the proxies the operator names.
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=False,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # surfaces the bind error
                raise OSError("web server stopped during start-up")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self._server.config.port

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
