"""Operations endpoints: `/readyz`, `/metrics`, and 503 for new work while draining.

`/healthz` (server.py) says the process lives; `/readyz` says it should get traffic:
database reachable, platforms started, scheduler leading or on standby, not stopping.
A load balancer stops sending to a replica whose `/readyz` fails; during shutdown every
other route (the webhooks) answers 503, which Slack and Telegram both retry later.

Anyone may ask whether the process is ready; only a caller on this host (not one behind a
proxy: a request carrying forwarding headers is not local) or one that presents
PARLEY_READYZ_TOKEN as a bearer token is told why, since the parts and their errors
describe the deployment.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, object]]]]

OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def ops_routes(
    *,
    ready: ReadyCheck,
    metrics: Callable[[], bytes],
    content_type: str,
    details_token: str | None = None,
) -> Sequence[BaseRoute]:
    async def readyz(request: Request) -> JSONResponse:
        show = may_see_details(request, details_token)
        try:
            ok, details = await ready()
        except Exception as exc:  # a failing check is "not ready", not a crash
            log.warning("readiness check failed: %s", exc)
            body: dict[str, object] = {"status": "error"}
            return JSONResponse({**body, "error": str(exc)} if show else body, status_code=503)
        body = {"status": "ok" if ok else "unavailable"}
        return JSONResponse({**body, **details} if show else body, status_code=200 if ok else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics(), media_type=content_type)

    return [Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]


def may_see_details(request: Request, token: str | None) -> bool:
    """A direct caller from a loopback address, or one with the bearer token."""
    if token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given and secrets.compare_digest(given.encode(), token.encode()):
            return True
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
