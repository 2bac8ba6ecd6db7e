"""Calling one MCP server's tool: the session renewed when the server forgot it, links
put to the user when it asks for them (-32042), a ping after a call that timed out."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import mcp_types
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INTERNAL_ERROR, REQUEST_TIMEOUT, URL_ELICITATION_REQUIRED
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bot.domain import Asker, ProgressReporter, ToolProgress
from bot.errors import ToolError
from tools.mcp.config import MCPServerConfig
from tools.mcp.elicitation import Elicitation
from tools.mcp.results import render_result
from tools.mcp.transport import HTTPSession

log = logging.getLogger("tools.mcp")
DAY = 86_400.0


class ToolCalls:
    """The calls of `MCPServerLink`, which holds the connection these read."""

    config: MCPServerConfig
    available: bool
    last_error: str
    _client: Client | None
    _broken: asyncio.Event
    _renew: bool
    _changed: asyncio.Condition
    _probe_timeout: float
    _probes: set[asyncio.Task[None]]
    _http_session: HTTPSession
    _elicitation: Elicitation

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        ask: Asker | None = None,
        report: ProgressReporter | None = None,
    ) -> str:
        """Call a tool by its MCP name; failures raise `ToolError` (an error result). The
        server's questions during the call go to `ask` (the user whose turn it is).

        An HTTP server that forgot our session (restarted, or another instance behind the
        same address) refused the call at the door: a new session is made and the call
        sent once more."""
        client = self._client
        if client is None or not self.available:
            detail = f" ({self.last_error})" if self.last_error else ""
            raise ToolError(
                f"the MCP server {self.config.name!r} is unavailable right now{detail}; "
                "it is being restarted, try again later"
            )
        try:
            return await self._call_renewing(client, name, arguments, ask, report)
        except LinksRequired as required:
            await self._open_links(required.error, ask)
        try:  # once more, after the user said they opened the links
            return await self._call_renewing(self._client or client, name, arguments, ask, report)
        except LinksRequired:
            raise ToolError(
                f"MCP server {self.config.name!r} still requires a link to be opened after "
                "the user said they had; the tool did not run"
            ) from None

    async def _call_renewing(
        self,
        client: Client,
        name: str,
        arguments: dict[str, Any],
        ask: Asker | None,
        report: ProgressReporter | None,
    ) -> str:
        """The call, sent once more on a new session when the server forgot ours."""
        try:
            return await self._call_on(client, name, arguments, ask, report)
        except SessionLost as lost:
            log.info(
                "MCP server %s no longer knows our session (%s); opening a new one and "
                "calling %s again",
                self.config.name,
                lost,
                name,
            )
            client = await self._renewed(client, lost)
        try:
            return await self._call_on(client, name, arguments, ask, report)
        except SessionLost as lost:
            raise ToolError(f"MCP server {self.config.name!r}: {lost}") from None

    async def _open_links(self, error: mcp_types.ErrorData, ask: Asker | None) -> None:
        """A call refused with -32042: the server's links put to the user as link
        questions; returns when every one was done (the call is then retried once)."""
        refused = await self._elicitation.links_required(error, ask)
        if refused:
            raise ToolError(
                f"MCP server {self.config.name!r} requires the user to open a link first "
                f"(to sign in or authorise it), and {refused}; the tool did not run"
            )

    async def _call_on(
        self,
        client: Client,
        name: str,
        arguments: dict[str, Any],
        ask: Asker | None,
        report: ProgressReporter | None,
    ) -> str:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if report is not None:
                await report(ToolProgress(progress, total, message or ""))

        try:
            with self._elicitation.calling(ask):
                # A handshake-era server asks mid-request: the user's answering time must
                # not time the request out. The tool's own timeout (paused while asking,
                # restarted by progress up to its hard cap) and the question's bound the
                # call instead. A progress callback makes the SDK send a progress token.
                result = await client.call_tool(
                    name, arguments, read_timeout_seconds=DAY, progress_callback=on_progress
                )
        except MCPError as exc:
            if exc.code == URL_ELICITATION_REQUIRED:
                raise LinksRequired(exc.error) from None
            if is_dead(exc):
                self._broken.set()
            elif may_be_session_refusal(exc) and await self._session_gone(client):
                raise SessionLost(exc.message[:200]) from None
            raise ToolError(f"MCP server {self.config.name!r}: {exc}") from None
        except (OSError, EOFError) as exc:
            self._broken.set()
            raise ToolError(f"MCP server {self.config.name!r} connection failed: {exc}") from None
        except asyncio.CancelledError:
            # Timed out (or the turn was stopped): a frozen server would cost every later
            # call the whole timeout until the listing timer noticed, so ask it now.
            self._probe_soon(client)
            raise
        text = render_result(result)
        if result.is_error:
            raise ToolError(text or "the tool reported an error")
        return text

    async def _session_gone(self, client: Client) -> bool:
        """Whether the server refuses our session itself (a ping on it fails too): only
        then was the call refused without running, and may be sent again."""
        if not self.config.url or client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return False  # stdio, or a stateless 2026 server: there is no session
        try:
            async with asyncio.timeout(self._probe_timeout):
                await client.session.send_ping()
        except TimeoutError:
            return False
        except MCPError as exc:
            return not is_dead(exc)
        return False

    async def _renewed(self, old: Client, lost: SessionLost) -> Client:
        """A client on a new session, once the link has made one (bounded by the call
        timeout); `ToolError` if none comes."""
        self._renew = True
        self._http_session.end = False  # it forgot the session: no goodbye to refuse
        self._broken.set()
        try:
            async with asyncio.timeout(self.config.call_timeout), self._changed:
                await self._changed.wait_for(
                    lambda: self.available and self._client not in (None, old)
                )
        except TimeoutError:
            raise ToolError(
                f"MCP server {self.config.name!r} forgot the session ({lost}) and no new "
                "one could be made"
            ) from None
        client = self._client
        if client is None:  # cannot be: the condition above; for the type checker
            raise ToolError(f"MCP server {self.config.name!r} is unavailable right now")
        return client

    def _probe_soon(self, client: Client) -> None:
        task = asyncio.create_task(self._probe(client))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, client: Client) -> None:
        """Restart the server if it does not answer a ping (a listing, on a 2026 server,
        which has no ping) within the probe timeout."""
        try:
            async with asyncio.timeout(self._probe_timeout):
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    await client.list_tools(cache_mode="bypass")
                else:
                    await client.session.send_ping()
        except TimeoutError:
            if self._client is client:
                self.last_error = f"no answer to a ping within {self._probe_timeout:g} s"
                log.warning(
                    "MCP server %s is frozen (%s); restarting it",
                    self.config.name,
                    self.last_error,
                )
                self._broken.set()
        except Exception as exc:  # the connection's own failure handling covers it
            log.debug("MCP server %s: probe failed: %s", self.config.name, describe(exc))


class SessionLost(Exception):
    """The HTTP server no longer knows the session of this connection."""


class LinksRequired(Exception):
    """The server refused the call until the user opens its links (-32042)."""

    def __init__(self, error: mcp_types.ErrorData) -> None:
        super().__init__(error.message)
        self.error = error


def is_dead(exc: MCPError) -> bool:
    """Whether an error means the connection is gone (closed, or no answer in time), as
    opposed to the server's refusal of one request."""
    if exc.code == REQUEST_TIMEOUT:
        return True
    return exc.code == CONNECTION_CLOSED and "closed" in exc.message.lower()


def may_be_session_refusal(exc: MCPError) -> bool:
    """Whether an error may be a server's refusal of an unknown session: the SDK's 404
    ("Session terminated"), a JSON-RPC error naming the session (the TypeScript SDK's 400
    "No valid session ID provided"), or an HTTP error without a JSON-RPC body."""
    message = exc.message.lower()
    return "session" in message or (
        exc.code == INTERNAL_ERROR and message == "server returned an error response"
    )


def describe(exc: BaseException) -> str:
    """The innermost cause of a failure (anyio wraps them in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
