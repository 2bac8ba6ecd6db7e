"""Operations endpoints: `/readyz`, `/metrics`, and 503 for new work while draining.

`/healthz` (server.py) says the process lives; `/readyz` says it should get traffic:
database reachable, platforms started, scheduler leading or on standby, not stopping.
A load balancer stops sending to a replica whose `/readyz` fails; during shutdown every
other route (the webhooks) answers 503, which Slack and Telegram both retry later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, object]]]]

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def ops_routes(
    *, ready: ReadyCheck, metrics: Callable[[], bytes], content_type: str
) -> Sequence[BaseRoute]:
    async def readyz(_request: Request) -> JSONResponse:
        try:
            ok, details = await ready()
        except Exception as exc:  # a failing check is "not ready", not a crash
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", **details}, status_code=200 if ok else 503
        )

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics(), media_type=content_type)

    return [Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]


class DrainingMiddleware:
    """While `draining()` holds, every request but the operations endpoints gets 503."""

    def __init__(self, app: ASGIApp, draining: Callable[[], bool]) -> None:
        self.app = app
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.draining() and scope["path"] not in OPS_PATHS:
            response = Response(
                "stopping; retry later", status_code=503, headers={"Retry-After": "5"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
